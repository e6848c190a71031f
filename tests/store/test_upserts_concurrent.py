"""The per-user rows written by an admin and by the meter (``billing_accounts``) under concurrent first writes
(review 4, finding 3): the admin's quota PUT racing the meter's first low-balance mark must not fail either one, and
neither may undo the other's columns. On a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import partial

from sqlalchemy import Connection

from arkserve.billing import accounts
from arkserve.store import disk_quotas
from arkserve.store import users as user_store
from arkserve.store.db import Store

WRITERS = 8


def _set_limits(conn: Connection, *, user_id: int, limits: dict[str, int | None], now: float) -> None:
    accounts.set_limits(conn, user_id, limits, now)


def _at_once(store: Store, writes: Sequence[Callable[[Connection], None]]) -> list[BaseException]:
    """Run each write in its own transaction on its own thread, all released together; the errors raised."""
    barrier, lock = threading.Barrier(len(writes)), threading.Lock()
    errors: list[BaseException] = []

    def one(write: Callable[[Connection], None]) -> None:
        barrier.wait()
        try:
            with store.begin() as conn:
                write(conn)
        except BaseException as exc:  # collected for the assertion
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(w,)) for w in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_quota_puts_racing_the_meters_low_balance_mark_all_succeed_and_keep_both(store: Store) -> None:
    for round_ in range(3):  # a fresh user each round: a new race on a missing row
        with store.begin() as conn:
            uid = user_store.create(conn, f"payer{round_}", "h", "user").id
        writes: list[Callable[[Connection], None]] = [
            partial(_set_limits, user_id=uid, limits={"max_replicas": 10 + n, "max_gpus": None}, now=100.0 + n)
            for n in range(WRITERS - 2)]
        writes += [partial(accounts.set_low_since, user_id=uid, low_since=50.0, now=200.0)] * 2
        assert _at_once(store, writes) == [], round_
        with store.read() as conn:
            row = accounts.get(conn, uid)
        assert row["low_since"] == 50.0  # the admin's limits did not clear the meter's mark
        assert row["max_replicas"] in range(10, 10 + WRITERS - 2) and row["max_gpus"] is None
        with store.begin() as conn:  # a later write wins
            accounts.set_limits(conn, uid, {"max_replicas": 99}, 300.0)
        with store.read() as conn:
            assert accounts.get(conn, uid)["max_replicas"] == 99


def test_simultaneous_disk_quotas_for_a_user_without_a_row_all_succeed(store: Store) -> None:
    for round_ in range(3):
        with store.begin() as conn:
            user = user_store.create(conn, f"disker{round_}", "h", "user").id
        values = [2**30 + n for n in range(WRITERS)]
        writes = [partial(disk_quotas.set_limit, user_id=user, limit_bytes=v) for v in values]
        assert _at_once(store, writes) == [], round_
        with store.read() as conn:
            assert disk_quotas.get(conn, user) in values
        with store.begin() as conn:
            disk_quotas.set_limit(conn, user, None)  # back to the default
        with store.read() as conn:
            assert disk_quotas.get(conn, user) is None
