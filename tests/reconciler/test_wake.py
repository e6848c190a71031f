"""A commit wakes a quiet reconciler at once (reconciler/wake.py): the SQLite store watch and the PostgreSQL
listener on their own, then a real reconciler whose timed passes are 30 s apart noticing a scale within a second
or two, on each store."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from arkserve.reconciler import wake as reconciler_wake
from arkserve.runtimes.local import LocalRuntime
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.db import open_store
from arkserve.store.services import CHANGES_CHANNEL
from arkserve.store.wake import NotifyWake, OnCommit, StoreWake
from tests import pg

from .conftest import FAST, running_cluster


def _db(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    return conn


def _when_quiet(woken: threading.Event, quiet: object) -> OnCommit:
    """What the reconciler hands a watcher (``reconciler.wake.for_url``)."""
    return lambda stop: reconciler_wake._when_quiet(quiet, woken, stop)  # type: ignore[arg-type]


def _wait(cond: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(cond) and cond():
            return True
        time.sleep(0.005)
    return False


def test_a_commit_wakes_the_loop_once_it_is_quiet(tmp_path: Path) -> None:
    writer = _db(tmp_path)
    woken, quiet = threading.Event(), [False]
    seen: list[int] = []  # rows a reader sees each time the watch asks: the commit must be visible by then

    def asked() -> bool:
        with sqlite3.connect(tmp_path / "store.db") as reader:
            seen.append(reader.execute("SELECT count(*) FROM t").fetchone()[0])
        return quiet[0]

    wake = StoreWake(str(tmp_path / "store.db"), _when_quiet(woken, asked))
    wake.start()
    try:
        writer.execute("SELECT * FROM t").fetchall()  # a read wakes nothing
        writer.execute("INSERT INTO t VALUES (1)")  # a pass is running: seen, no wake-up while it runs ...
        assert _wait(lambda: wake.commits == 1)
        assert not woken.wait(0.2)
        quiet[0] = True  # ... and one as soon as it ends (that pass may have read the feed before the commit)
        assert woken.wait(5), "a commit seen mid-pass wakes the loop when the pass ends"
        woken.clear()
        t0 = time.monotonic()
        writer.execute("INSERT INTO t VALUES (2)")
        assert woken.wait(5), "a commit while quiet wakes the loop"
        assert time.monotonic() - t0 < 1.0
        assert wake.commits == 2 and seen[0] == 1 and seen[-1] == 2 and seen == sorted(seen), seen  # asked after
    finally:
        wake.close()
        writer.close()


class _LateCommit(StoreWake):
    """A store whose commits show ``late_s`` after their pages reach the WAL: the writer was descheduled
    between the two (a busy box), so no further inotify event comes when the commit becomes visible."""

    late_s = 0.3
    written_at = 0.0

    def _written(self) -> bool:
        found = super()._written()
        if found:
            self.written_at = time.monotonic()
        return found

    def _version(self) -> int:
        version = super()._version()
        if self.written_at and time.monotonic() - self.written_at < self.late_s:
            return self._last  # not visible yet
        return version


def test_a_commit_that_shows_long_after_its_wal_write_still_wakes_the_loop(tmp_path: Path) -> None:
    writer = _db(tmp_path)
    woken = threading.Event()
    wake = _LateCommit(str(tmp_path / "store.db"), _when_quiet(woken, lambda: True))
    wake.start()
    try:
        writer.execute("INSERT INTO t VALUES (1)")
        assert woken.wait(5), "a commit visible 0.3 s after its WAL write was dropped until the timed poll"
        assert wake.commits == 1
    finally:
        wake.close()
        writer.close()


def test_only_a_file_backed_sqlite_store_is_watched(tmp_path: Path) -> None:
    _db(tmp_path).close()
    event = threading.Event()
    made = StoreWake.for_url(f"sqlite:///{tmp_path}/store.db", _when_quiet(event, lambda: True))
    assert made is not None
    made.close()
    assert StoreWake.for_url("sqlite://", _when_quiet(event, lambda: True)) is None
    assert StoreWake.for_url("postgresql+psycopg://u:p@127.0.0.1:1/db", _when_quiet(event, lambda: True)) is None
    assert reconciler_wake.for_url("sqlite://", event, lambda: True) is None
    made = reconciler_wake.for_url("postgresql+psycopg://u:p@127.0.0.1:1/db", event, lambda: True)
    assert isinstance(made, NotifyWake) and made.channel == CHANGES_CHANNEL


def test_a_change_feed_commit_to_a_postgresql_store_wakes_the_loop_once_it_is_quiet(postgres_admin_url: str) -> None:
    store = open_store(pg.fresh_database(postgres_admin_url))
    woken, quiet = threading.Event(), [False]
    wake = NotifyWake(store.engine.url, _when_quiet(woken, lambda: quiet[0]), CHANGES_CHANNEL)
    wake.start()
    try:
        assert wake.listening.wait(10), "the listener connected"
        with store.begin() as conn:  # a commit that is not a change-feed entry wakes nothing
            event_store.record(conn, "svc", "Note", "not a change")
        with store.begin() as conn:  # a pass is running: seen, no wake-up while it runs ...
            service_store.touch(conn)
        assert _wait(lambda: wake.commits == 1)
        assert not woken.wait(0.2)
        quiet[0] = True  # ... and one as soon as it ends
        assert woken.wait(5), "a change seen mid-pass wakes the loop when the pass ends"
        woken.clear()
        t0 = time.monotonic()
        with store.begin() as conn:
            service_store.touch(conn)
            service_store.touch(conn)  # one transaction, one notification
        assert woken.wait(5), "a change while quiet wakes the loop"
        assert time.monotonic() - t0 < 1.0
        assert _wait(lambda: wake.commits == 2) and not _wait(lambda: wake.commits > 2, timeout=0.5)
    finally:
        wake.close()
        store.dispose()


def test_the_postgresql_listener_comes_back_after_its_connection_is_cut(postgres_admin_url: str) -> None:
    import psycopg

    store = open_store(pg.fresh_database(postgres_admin_url))
    woken = threading.Event()
    wake = NotifyWake(store.engine.url, _when_quiet(woken, lambda: True), CHANGES_CHANNEL, retry_s=0.1)
    wake.start()
    try:
        assert wake.listening.wait(10)
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            cut = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE 'LISTEN %'").fetchall()
        assert cut == [(True,)]
        assert _wait(lambda: not wake.listening.is_set()), "the cut was noticed"
        assert wake.listening.wait(10), "and the LISTEN is back"
        with store.begin() as conn:
            service_store.touch(conn)
        assert woken.wait(5)
    finally:
        wake.close()
        store.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_quiet_reconciler_acts_on_a_scale_at_once_not_at_its_next_timed_pass(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    url = None
    if backend == "postgres":
        url = pg.fresh_database(request.getfixturevalue("postgres_admin_url"))
    with running_cluster(tmp_path, LocalRuntime, url) as c:
        c.stop()
        c.config = replace(FAST, wake_poll_s=30.0, interval_s=30.0)  # timed passes 30 s apart
        c.start()
        c.create("web", 0, command=f"exec {sys.executable} app.py")
        c.wait("the service to be seen", lambda: (s := c.service("web")) is not None and s.status == "stopped",
               timeout=10)
        c.wait("the reconciler to be quiet", lambda: c.reconciler is not None and c.reconciler._quiet(), timeout=10)
        c.scale("web", 1)
        took = c.wait("a ready replica", lambda: bool(c.ready("web")), timeout=15)
        assert took < 10, took  # a drain still waits for a timed pass (the schedule's), so no scale down here
