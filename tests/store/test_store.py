"""The store contract, run on a real SQLite file and a real PostgreSQL server alike."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from arkserve.auth import keys as key_service
from arkserve.auth.vault import MasterKey, VaultError, unseal
from arkserve.errors import Conflict, LimitExceeded, NotFound
from arkserve.store import instance_types, sessions
from arkserve.store import keys as key_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import MIGRATIONS, Store, migrate, version
from arkserve.store.routing import load_snapshot
from arkserve.store.tables import metadata


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_migrations_produce_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
    migrate(store.engine)  # migrating again is a no-op
    with store.read() as conn:
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert conn.execute(text("select version_num from alembic_version")).scalar_one() == head


def test_users_unique_names_and_lifecycle(store: Store) -> None:
    with store.begin() as conn:
        alice = user_store.create(conn, "alice", "h1", "admin")
    with pytest.raises(Conflict), store.begin() as conn:
        user_store.create(conn, "alice", "h2", "user")
    with store.begin() as conn:
        user_store.create(conn, "bob", "h3", "user")  # the failed insert left the store usable
        user_store.set_disabled(conn, alice.id, True)
    with store.read() as conn:
        assert [u.username for u in user_store.list_all(conn)] == ["alice", "bob"]
        assert user_store.get(conn, "alice").disabled
        assert user_store.count_admins(conn) == 0
    with store.begin() as conn:
        user_store.remove(conn, alice.id)
    with pytest.raises(NotFound), store.read() as conn:
        user_store.get(conn, "alice")


def test_keys_are_sealed_limited_and_cascade_with_their_user(store: Store) -> None:
    master = MasterKey.generate()
    with store.begin() as conn:
        uid = user_store.create(conn, "carol", "h", "user").id
        issued = [key_service.issue(conn, master, uid, f"k{i}") for i in range(key_service.MAX_KEYS_PER_USER)]
    with pytest.raises(LimitExceeded), store.begin() as conn:
        key_service.issue(conn, master, uid)
    with store.read() as conn:
        raw = conn.execute(text("select secret_sealed, dek_wrapped from access_keys")).all()
        for ak, sk in issued:
            assert key_service.reveal(conn, master, ak) == sk
    for sealed, wrapped in raw:  # no SK is stored in clear
        assert all(sk.encode() not in bytes(sealed) + bytes(wrapped) for _, sk in issued)
    with store.begin() as conn:
        user_store.remove(conn, uid)
    with store.read() as conn:
        assert key_store.list_keys(conn) == []


def test_rotating_the_master_key_rewraps_every_secret(store: Store) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    with store.begin() as conn:
        uid = user_store.create(conn, "dave", "h", "user").id
        pairs = [key_service.issue(conn, old, uid) for _ in range(3)]
    with store.begin() as conn:
        assert key_service.rotate_master(conn, old, new) == 3
        assert key_service.rotate_master(conn, old, new) == 0  # idempotent
    with store.read() as conn:
        for ak, sk in pairs:
            stored = key_store.get(conn, ak)
            assert unseal(new, stored.sealed, ak).decode() == sk
            with pytest.raises(VaultError):
                unseal(old, stored.sealed, ak)


def test_routing_version_moves_on_key_and_user_changes(store: Store) -> None:
    master = MasterKey.generate()
    with store.read() as conn:
        v0 = version(conn)
    with store.begin() as conn:
        uid = user_store.create(conn, "erin", "h", "user").id
        ak, _ = key_service.issue(conn, master, uid)
    with store.read() as conn:
        v1 = version(conn)
    with store.begin() as conn:
        key_store.set_enabled(conn, ak, False)
    with store.read() as conn:
        assert v0 < v1 < version(conn)


def test_a_failed_service_reaches_the_gateway_with_its_reason_only(store: Store) -> None:
    master = MasterKey.generate()
    with store.begin() as conn:
        uid = user_store.create(conn, "fay", "h", "user").id
        svc = service_store.create(conn, "wobbly", uid, {"image": "x", "port": 8000, "command": "x"}, 1, 20001)
    with store.read() as conn:
        v0 = version(conn)
        assert load_snapshot(conn, master).services["wobbly"].failing == ""
    with store.begin() as conn:
        service_store.set_status(conn, svc.id, "failed", "CrashLoop", "replica r1: exited 3; last output: token=s3cr3t")
    with store.read() as conn:
        snap = load_snapshot(conn, master)
        assert snap.version > v0 and snap.services["wobbly"].failing == "CrashLoop"  # never the log lines
    with store.begin() as conn:
        service_store.set_status(conn, svc.id, "ready", "Running", "1/1 replicas ready")
    with store.read() as conn:
        snap2 = load_snapshot(conn, master)
        assert snap2.version > snap.version and snap2.services["wobbly"].failing == ""


def test_a_service_not_ready_reaches_the_gateway_with_why(store: Store) -> None:
    master = MasterKey.generate()
    with store.begin() as conn:
        uid = user_store.create(conn, "gus", "h", "user").id
        svc = service_store.create(conn, "slowpoke", uid, {"image": "x", "port": 8000, "command": "x"}, 1, 20001)
        service_store.set_status(conn, svc.id, "progressing", "Scaling", "0/1 replicas ready")
    with store.read() as conn:
        v0 = version(conn)
        assert load_snapshot(conn, master).services["slowpoke"].not_ready == "Scaling"
    with store.begin() as conn:
        service_store.set_status(conn, svc.id, "progressing", "WrongPort", "the app listens on 9000, but …")
    with store.read() as conn:  # a new reason moves the version, so gateways see it
        snap = load_snapshot(conn, master)
        assert snap.version > v0 and snap.services["slowpoke"].not_ready == "WrongPort"
    with store.begin() as conn:
        service_store.update_desired(conn, service_store.get(conn, "slowpoke"), replica_count=0)
    with store.read() as conn:
        assert load_snapshot(conn, master).services["slowpoke"].not_ready == "ScaledToZero"
    with store.begin() as conn:
        service_store.set_status(conn, svc.id, "ready", "Running", "0/0 replicas ready")
    with store.read() as conn:
        assert load_snapshot(conn, master).services["slowpoke"].not_ready == ""


def test_sessions_expire_and_store_only_a_hash(store: Store) -> None:
    with store.begin() as conn:
        uid = user_store.create(conn, "frank", "h", "user").id
        sessions.create(conn, "tok-live", uid, "csrf", ttl_s=60)
        sessions.create(conn, "tok-dead", uid, "csrf", ttl_s=-1)
    with store.read() as conn:
        assert sessions.find(conn, "tok-live") is not None
        assert sessions.find(conn, "tok-dead") is None
        assert "tok-live" not in str(conn.execute(text("select token_hash from sessions")).all())


def test_a_failed_transaction_loses_nothing_acknowledged(store: Store) -> None:
    with store.begin() as conn:
        user_store.create(conn, "gina", "h", "user")
    with pytest.raises(RuntimeError), store.begin() as conn:
        user_store.create(conn, "hank", "h", "user")
        raise RuntimeError("crash mid-transaction")
    with store.read() as conn:
        assert [u.username for u in user_store.list_all(conn)] == ["gina"]


def test_instance_types_seed_once(store: Store) -> None:
    with store.begin() as conn:
        instance_types.seed(conn, ["NVIDIA H100"])
        instance_types.seed(conn, [])
    with store.read() as conn:
        names = [t["name"] for t in instance_types.list_all(conn)]
        assert names == ["cpu.large", "cpu.medium", "cpu.small", "gpu.1x"]
        assert instance_types.get(conn, "gpu.1x")["gpu_model"] == "NVIDIA H100"


def test_concurrent_writers_wait_instead_of_failing(store: Store) -> None:
    import threading

    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                with store.begin() as conn:
                    user_store.create(conn, f"u{i}x{j}", "h", "user")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and time.monotonic() - start < 60
    with store.read() as conn:
        assert user_store.count(conn) == 40


def test_gateway_acks_tell_when_every_live_worker_caught_up(store: Store) -> None:
    from arkserve.store.routing import ack, gateways_caught_up

    with store.begin() as conn:
        assert gateways_caught_up(conn, 5)  # no gateway at all: nothing to wait for
        ack(conn, "host:1", 4)
        ack(conn, "host:2", 5)
        assert not gateways_caught_up(conn, 5)
        ack(conn, "host:1", 5)  # an update, not a second row
        assert gateways_caught_up(conn, 5)
        ack(conn, "host:3", 1)
        assert not gateways_caught_up(conn, 5)
        assert gateways_caught_up(conn, 5, fresh_s=-1)  # a worker silent for too long no longer counts
