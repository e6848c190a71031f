"""The change feed (service_changes) and the gateway's snapshots in O(changed), on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from arkserve.auth import keys as key_service
from arkserve.auth.vault import MasterKey
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, bump
from arkserve.store.routing import SnapshotLoader, load_snapshot
from arkserve.store.services import ReplicaRow

SPEC = {"image": "img", "command": "serve", "port": 8000}


def _changed(store: Store, seen: int) -> list[str]:
    with store.read() as conn:
        return [s.name for s in service_store.changed_since(conn, seen)]


def _seq(store: Store) -> int:
    with store.read() as conn:
        return service_store.feed_versions(conn)[1]


def test_every_kind_of_change_moves_exactly_its_service(store: Store) -> None:
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        for name in ("a", "b", "c"):
            service_store.create(conn, name, owner, SPEC, 0, None)
    assert _changed(store, 0) == ["a", "b", "c"]  # oldest change first

    def moves(name: str, change: object) -> None:
        seen = _seq(store)
        with store.begin() as conn:
            svc = service_store.get(conn, name)
            change(conn, svc)  # type: ignore[operator]
        assert _changed(store, seen) == [name]
        assert _changed(store, _seq(store)) == []

    moves("b", lambda conn, svc: service_store.update_desired(conn, svc, replica_count=2))
    moves("a", lambda conn, svc: service_store.set_status(conn, svc.id, "ready", "Running", "1/1"))
    moves("c", lambda conn, svc: service_store.save_replica(
        conn, ReplicaRow("r1", svc.id, "rev", "starting"), routing_changed=False))
    moves("c", lambda conn, svc: service_store.delete_replica(conn, "r1"))
    moves("a", lambda conn, svc: service_store.mark_deleting(conn, svc))

    seen = _seq(store)
    with store.read() as conn:
        removals = service_store.feed_versions(conn)[2]
    with store.begin() as conn:
        service_store.remove(conn, service_store.get(conn, "a").id)
    with store.read() as conn:
        assert service_store.feed_versions(conn)[2] == removals + 1
        assert service_store.by_ids(conn, [1, 2, 3]) and {s.name for s in service_store.by_ids(conn, [1, 2, 3])} == {
            "b", "c"}
    assert _changed(store, seen) == []


def _ready(store: Store, name: str, rid: str, port: int) -> None:
    with store.begin() as conn:
        svc = service_store.get(conn, name)
        service_store.save_replica(conn, ReplicaRow(rid, svc.id, "rev", "ready", "127.0.0.1", port,
                                                    started_at=time.time()), routing_changed=True)


def test_snapshots_after_the_first_carry_only_what_changed_and_equal_a_full_load(store: Store) -> None:
    master = MasterKey.generate()
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        for i in range(20):
            service_store.create(conn, f"s{i:02d}", owner, SPEC, 1, None)
    loader = SnapshotLoader(master)
    with store.read() as conn:
        first = loader.load(conn)
    assert first.changed is None and len(first.services) == 20  # the first one is full

    _ready(store, "s07", "r7", 40007)
    with store.read() as conn:
        delta = loader.load(conn)
        full = load_snapshot(conn, master)
    assert delta.changed == {"s07"} and delta.base == first.version and not delta.keys_changed
    assert delta.version == full.version and dict(delta.services) == dict(full.services)
    assert delta.services["s07"].upstreams[0].port == 40007
    assert delta.keys is first.keys  # not reloaded: no key moved

    with store.begin() as conn:  # a status that changes nothing the gateway sees is not a change for it
        service_store.touch(conn, service_store.get(conn, "s03").id)
        bump(conn)
    with store.read() as conn:
        quiet = loader.load(conn)
    assert quiet.changed == frozenset() and dict(quiet.services) == dict(delta.services)

    with store.begin() as conn:
        ak, _ = key_service.issue(conn, master, owner)
    with store.read() as conn:
        keyed = loader.load(conn)
        full = load_snapshot(conn, master)
    assert keyed.keys_changed and keyed.changed == frozenset() and set(keyed.keys) == set(full.keys) == {ak}
    with store.begin() as conn:
        user_store.set_disabled(conn, owner, True)
    with store.read() as conn:
        assert loader.load(conn).keys == {}

    with store.begin() as conn:
        service_store.remove(conn, service_store.get(conn, "s11").id)
    with store.read() as conn:
        after = loader.load(conn)
    assert after.changed is None and "s11" not in after.services and len(after.services) == 19


def test_a_gateway_sources_deltas_come_from_the_drivers_connection_and_equal_a_full_load(store: Store) -> None:
    """The worker's delta reads skip SQLAlchemy's connection (issue 16: a change must cost well under 1 ms):
    what they build (JSON specs decoded, canaries, upstreams in order) equals a full load."""
    from sqlalchemy import event

    from arkserve.store import canary as canary_store
    from arkserve.store.routing import StoreSnapshotSource

    master = MasterKey.generate()
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        for i in range(6):
            service_store.create(conn, f"s{i}", owner, {**SPEC, "auth": i % 2 == 0, "request_timeout_s": 5.0 + i},
                                 1, None)
    source = StoreSnapshotSource(store, master, worker="w")
    first = source.load()
    assert first.changed is None and source.version() == first.version
    connects: list[object] = []

    def connected(conn: object) -> None:
        connects.append(conn)

    event.listen(store.engine, "engine_connect", connected)
    try:
        _ready(store, "s3", "r3", 40003)
        _ready(store, "s3", "r3b", 40004)
        with store.begin() as conn:
            svc = service_store.get(conn, "s4")
            canary_store.set_canary(conn, svc, {**SPEC, "image": "img2"}, 25)
        connects.clear()
        assert source.version() > first.version
        delta = source.load()
        assert connects == []  # neither read went through a SQLAlchemy Connection
    finally:
        event.remove(store.engine, "engine_connect", connected)
    with store.read() as conn:
        full = load_snapshot(conn, master)
    assert delta.changed == {"s3", "s4"} and delta.version == full.version
    assert dict(delta.services) == dict(full.services)
    assert [u.port for u in delta.services["s3"].upstreams] == [40003, 40004]
    assert delta.services["s4"].canary_weight == 25 and delta.services["s1"].auth is False


def test_a_failed_driver_read_falls_back_to_the_usual_path(store: Store) -> None:
    from arkserve.store import driver
    from arkserve.store.routing import StoreSnapshotSource

    master = MasterKey.generate()
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        service_store.create(conn, "a", owner, SPEC, 1, None)
    source = StoreSnapshotSource(store, master, worker="w")
    source.load()
    broken = driver.Statements(feed=select_nothing(), changed=select_nothing(), version=select_nothing())
    import arkserve.store.routing as routing
    saved, routing._HOT = routing._HOT, broken
    try:
        _ready(store, "a", "r1", 40001)
        assert source.version() > 0
        snap = source.load()
    finally:
        routing._HOT = saved
    assert [u.port for u in snap.services["a"].upstreams] == [40001]
    _ready(store, "a", "r2", 40002)  # the dropped connection is opened again
    assert [u.port for u in source.load().services["a"].upstreams] == [40001, 40002]


def select_nothing() -> object:
    from sqlalchemy import text
    return text("SELECT * FROM no_such_table")


def test_connections_the_driver_read_on_go_back_to_the_pool_as_they_came(store: Store) -> None:
    """On PostgreSQL the driver reads in autocommit (no BEGIN and ROLLBACK round trips). A connection handed back
    to the pool that way would make a later store transaction commit each statement as it ran: a rollback would
    keep its writes."""
    from arkserve.store import driver

    session = driver.Session(store.engine)
    with session.read() as kept, driver.read(store.engine) as one_off:  # both paths, on two connections
        assert kept.execute("SELECT 1") == one_off.execute("SELECT 1") == [(1,)]
    session.close()
    with store.engine.connect() as a, store.engine.connect() as b:  # the pool's two connections, whichever is which
        for conn, name in ((a, "ghost-a"), (b, "ghost-b")):
            tx = conn.begin()
            user_store.create(conn, name, "h", "user")
            tx.rollback()
    with store.read() as conn:
        assert user_store.find(conn, "ghost-a") is None and user_store.find(conn, "ghost-b") is None
