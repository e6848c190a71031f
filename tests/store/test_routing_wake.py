"""On PostgreSQL a gateway worker loads a new routing version as soon as it is committed
(``StoreSnapshotSource.watch``), not at its next poll; the poll stays the fallback. The holder here polls every
30 s, so only the watch can pass the test. SQLite is polled (``watch`` says why)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from arkserve.auth.vault import MasterKey
from arkserve.domain.routing import RoutingSnapshot
from arkserve.gateway.snapshot import SnapshotHolder
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import ROUTING_CHANNEL, Store, bump, open_store
from arkserve.store.routing import StoreSnapshotSource
from arkserve.store.wake import NotifyWake, for_url
from tests import pg


def _watchers() -> int:
    return sum(t.name == "ark-storewake" and t.is_alive() for t in threading.enumerate())


def _listening(store: Store) -> bool:
    with store.read() as conn:
        query = f"SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN {ROUTING_CHANNEL}'"
        return int(conn.exec_driver_sql(query).scalar_one()) > 0


async def _wait(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        await asyncio.sleep(0.005)
    return False


def test_a_watching_holder_applies_a_new_routing_version_at_once(postgres_admin_url: str) -> None:
    store = open_store(pg.fresh_database(postgres_admin_url))
    applied: list[RoutingSnapshot] = []
    source = StoreSnapshotSource(store, MasterKey.generate(), worker="w")
    holder = SnapshotHolder(source, applied.append, poll_s=30.0)
    before = _watchers()

    async def scenario() -> list[float]:
        assert await holder.refresh()  # the first snapshot, as a worker loads it on start
        holder.start()
        took = []
        try:
            assert await _wait(lambda: _listening(store), 10.0), "the worker's LISTEN is in place"
            for _ in range(3):
                seen = holder.current.version
                t0 = time.monotonic()
                with store.begin() as conn:
                    bump(conn)
                assert await _wait(lambda: holder.current.version > seen, 5.0), "only the 30 s poll would load it"
                took.append(time.monotonic() - t0)
        finally:
            await holder.stop()
        return took

    try:
        took = asyncio.run(scenario())
    finally:
        source.close()
        store.dispose()
    assert max(took) < 1.0, took
    assert len(applied) == 4 and [s.version for s in applied] == sorted({s.version for s in applied})
    assert asyncio.run(_wait(lambda: _watchers() == before, 5.0)), "stopping the holder ends its watcher thread"


def test_a_sqlite_store_is_polled_not_watched(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/arkserve.db")
    before = _watchers()
    try:
        assert StoreSnapshotSource(store, MasterKey.generate(), worker="w").watch(lambda: None) is None
        assert _watchers() == before
    finally:
        store.dispose()


def test_on_postgresql_only_a_routing_version_notifies_the_gateways(postgres_admin_url: str) -> None:
    store = open_store(pg.fresh_database(postgres_admin_url))
    commits: list[int] = []
    watcher = for_url(store.engine.url, lambda stop: commits.append(1), ROUTING_CHANNEL)
    assert isinstance(watcher, NotifyWake)
    watcher.start()
    try:
        assert watcher.listening.wait(10)
        with store.begin() as conn:  # the reconciler's change feed and other counters: not the gateways' business
            service_store.touch(conn)
            bump(conn, "keys")
        with store.begin() as conn:
            user_store.set_role(conn, user_store.create(conn, "ann", "pw-not-logged", role="user").id, "admin")
        deadline = time.monotonic() + 5
        while not commits and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.3)
        assert commits == [1], "one notification: the role change's routing version, not the feed or the keys"
    finally:
        watcher.close()
        store.dispose()


def test_a_transaction_notifies_each_channel_once(postgres_admin_url: str) -> None:
    from sqlalchemy import event

    store = open_store(pg.fresh_database(postgres_admin_url))
    sent: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("NOTIFY"):
            sent.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.begin() as conn:  # each NOTIFY is a round trip; the server folds repeats anyway
            bump(conn)
            service_store.touch(conn)
            bump(conn)
            service_store.touch(conn)
        assert sorted(sent) == ["NOTIFY arkserve_changes", "NOTIFY arkserve_routing"]
        sent.clear()
        with store.begin() as conn:  # the next transaction, on the same pooled connection, notifies again
            bump(conn)
        assert sent == ["NOTIFY arkserve_routing"]
    finally:
        store.dispose()
