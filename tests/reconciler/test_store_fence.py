"""Store writes fenced by the leader lease (arkserve/store/fence.py), on real SQLite and PostgreSQL: a deposed
leader's write transactions are refused before they write, and on PostgreSQL a takeover waits for the writes
that passed the check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from arkserve.store import leases as lease_store
from arkserve.store.db import Store, bump, open_store, version
from arkserve.store.fence import NotLeading, install
from tests import pg


def _wait(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[Store, Store]]:
    """(the elector's store, a second engine on the same database for the fenced parts)."""
    plain = open_store(database_url)
    fenced = open_store(database_url, migrate_schema=False)
    yield plain, fenced
    fenced.dispose()
    plain.dispose()


def _take(store: Store, holder: str, duration_s: float) -> int:
    with store.begin() as conn:
        row = lease_store.acquire(conn, "reconciler", holder, duration_s)
    assert row.holder == holder
    return row.token


def _expired(store: Store) -> bool:
    with store.read() as conn:
        row = lease_store.get(conn, "reconciler")
        return row is not None and row.expires_at <= lease_store.db_now(conn)


def test_a_deposed_leaders_writes_are_refused_and_write_nothing(stores: tuple[Store, Store]) -> None:
    plain, fenced = stores
    me = ["a", None]
    install(fenced, "reconciler", lambda: (me[0], me[1]))  # type: ignore[arg-type,return-value]
    with pytest.raises(NotLeading, match="held by nobody"), fenced.begin() as conn:  # never won: no row yet
        bump(conn)
    me[1] = _take(plain, "a", 0.3)
    with fenced.begin() as conn:
        bump(conn)
    with fenced.read() as conn:
        before = version(conn)  # reads are never fenced
    _wait(lambda: _expired(plain))
    token_b = _take(plain, "b", 30)
    assert token_b == me[1] + 1  # type: ignore[operator]
    with pytest.raises(NotLeading, match=f"held by b \\(token {token_b}\\)"), fenced.begin() as conn:
        bump(conn)
    with plain.read() as conn:
        assert version(conn) == before  # nothing of the refused transaction was written


def test_on_postgresql_a_takeover_waits_for_the_writes_that_passed_the_check(postgres_admin_url: str) -> None:
    """(On SQLite the writer's BEGIN IMMEDIATE excludes the takeover; the test above covers that backend.)"""
    url = pg.fresh_database(postgres_admin_url)
    plain, fenced = open_store(url), open_store(url, migrate_schema=False)
    try:
        _takeover_waits(plain, fenced)
    finally:
        fenced.dispose()
        plain.dispose()


def _takeover_waits(plain: Store, fenced: Store) -> None:
    token = _take(plain, "a", 0.3)
    install(fenced, "reconciler", lambda: ("a", token))
    in_txn, finish, written = threading.Event(), threading.Event(), []

    def leader() -> None:
        with fenced.begin() as conn:  # passed the fence: holds the lease row FOR SHARE until it ends
            in_txn.set()
            finish.wait(30)
            bump(conn)
            written.append(version(conn))

    t = threading.Thread(target=leader)
    t.start()
    assert in_txn.wait(10)
    _wait(lambda: _expired(plain))
    got: list[int] = []
    taker = threading.Thread(target=lambda: got.append(_take(plain, "b", 30)))
    taker.start()

    def waiting_on_a_lock() -> bool:
        with plain.read() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'UPDATE leases%'")).scalar_one())

    _wait(waiting_on_a_lock)  # the takeover's UPDATE is blocked by the leader's transaction
    assert got == []
    finish.set()
    t.join(10)
    taker.join(10)
    assert got == [token + 1] and written  # the leader's write landed first, then the lease changed hands
    with pytest.raises(NotLeading), fenced.begin() as conn:
        bump(conn)
