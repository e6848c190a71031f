"""Telling a waiting thread at once that someone committed to the store, instead of leaving it to its next poll.

The reconciler (:mod:`arkserve.reconciler.wake`: a quiet loop's next pass starts at once) and each gateway worker
(:class:`arkserve.store.routing.StoreSnapshotSource`: a new routing version is loaded at once) poll the store every
0.1 s; a watcher here calls their ``on_commit`` as soon as a commit shows, and the poll stays their fallback.

- SQLite: a :class:`StoreWake` watches the store's directory with inotify (Linux). A commit writes its pages to
  ``<db>-wal`` first, which wakes one thread (reads write nothing and wake nothing; an idle store costs nothing).
  The pages are written before the commit is visible, so the thread then checks for the commit to show on a
  read-only connection of its own (``PRAGMA data_version`` changes when another connection committed: a few
  microseconds, no disk read), 1 ms apart and backing off to 50 ms, for up to ``visible_within_s`` (2 s): nothing
  signals the moment a commit becomes visible, and a busy box can deschedule the writer between its WAL write and
  that moment for far longer than the usual microseconds. Every commit counts, whatever it wrote.
- PostgreSQL: a :class:`NotifyWake` uses the server's own signal. Writers send ``NOTIFY`` on a channel with their
  transaction, delivered at commit: :data:`~arkserve.store.services.CHANGES_CHANNEL` with every change-feed entry
  (``services.touch``), :data:`~arkserve.store.db.ROUTING_CHANNEL` with every routing version (``db.bump``). A
  thread with a connection of its own ``LISTEN``s on one channel and sleeps in ``select`` on it; a lost
  connection is opened again every ``retry_s`` (the poll covers the gap).

:func:`for_url` picks one. ``on_commit(stop)`` runs on the watcher's thread; ``stop`` is set when the watcher
closes (a callback that waits must give up then).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import URL, make_url

_IN_MODIFY = 0x2
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class Wake(Protocol):
    commits: int

    def start(self) -> None: ...

    def close(self) -> None: ...


OnCommit = Callable[[threading.Event], None]


def for_url(url: str | URL, on_commit: OnCommit, channel: str) -> Wake | None:
    """The wake for the store at ``url``: inotify on a SQLite file, LISTEN on ``channel`` on PostgreSQL; None
    otherwise (in-memory SQLite, no inotify)."""
    if make_url(url).get_backend_name() == "postgresql":
        return NotifyWake(url, on_commit, channel)
    return StoreWake.for_url(url, on_commit)


class _Watcher:
    """A daemon thread that runs :meth:`_watch` from :meth:`start` until :meth:`close`; a byte on its stop pipe
    ends the thread's ``select`` at once, and the thread releases what it holds as it ends."""

    def _thread_init(self) -> None:
        self._stop = threading.Event()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="ark-storewake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """End the thread without waiting for it."""
        started = self._thread.ident is not None
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if not started:
            self._release()

    def _run(self) -> None:
        try:
            self._watch()
        finally:
            self._release()

    def _watch(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class StoreWake(_Watcher):
    """Calls ``on_commit`` when another connection's commit to the SQLite file ``database`` becomes visible.
    :meth:`start` and :meth:`close` run and end its thread."""

    def __init__(self, database: str, on_commit: OnCommit, *, visible_within_s: float = 2.0) -> None:
        path = Path(database).resolve()
        self.on_commit, self.visible_within_s = on_commit, visible_within_s
        self.names = {path.name.encode(), f"{path.name}-wal".encode()}
        self.commits = 0  # commits seen
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                                     isolation_level=None)
        self._last = self._version()
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = int(libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK))
        if self._fd < 0 or libc.inotify_add_watch(self._fd, str(path.parent).encode(), _IN_MODIFY) < 0:
            err = ctypes.get_errno()
            if self._fd >= 0:
                os.close(self._fd)
            self._conn.close()
            raise OSError(err, "inotify")
        self._thread_init()

    @classmethod
    def for_url(cls, url: str | URL, on_commit: OnCommit) -> StoreWake | None:
        """A wake for a file-backed SQLite store; None for anything else (PostgreSQL, in-memory, no inotify)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
            return None
        try:
            return cls(parsed.database, on_commit)
        except (OSError, sqlite3.Error, AttributeError):
            return None

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._conn.close()
        super()._release()

    def _version(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def _written(self) -> bool:
        """Whether the events waiting on the inotify descriptor include a write to the store's files."""
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return False
        found, at = False, 0
        while at + _EVENT.size <= len(data):
            _, _, _, length = _EVENT.unpack_from(data, at)
            found = found or data[at + _EVENT.size: at + _EVENT.size + length].rstrip(b"\0") in self.names
            at += _EVENT.size + length
        return found

    def _watch(self) -> None:
        pending_until = 0.0  # a write was seen and its commit has not shown yet: keep checking until then
        step = 0.001
        while not self._stop.is_set():
            try:
                timeout = None if not pending_until else max(0.0, min(step, pending_until - time.monotonic()))
                ready, _, _ = select.select([self._fd, self._stop_r], [], [], timeout)
                if self._stop.is_set():
                    return
                if self._fd in ready and self._written():
                    pending_until, step = time.monotonic() + self.visible_within_s, 0.001
                elif not pending_until:
                    continue
                if (now := self._version()) == self._last:
                    # Its pages are in the WAL and the commit shows a moment later; a writer descheduled in
                    # between makes that moment long, and no event marks it: check again, backing off, for
                    # visible_within_s (a checkpoint writes without a commit and ends the same way).
                    step = min(step * 2, 0.05)
                    if time.monotonic() >= pending_until:
                        pending_until = 0.0
                    continue
                pending_until = 0.0
                self._last, self.commits = now, self.commits + 1
                self.on_commit(self._stop)
            except (OSError, ValueError, sqlite3.Error):
                if self._stop.is_set():
                    return
                time.sleep(0.1)


class NotifyWake(_Watcher):
    """Calls ``on_commit`` when a transaction that notified ``channel`` commits to the PostgreSQL store at ``url``.
    Its thread keeps a connection of its own, in autocommit, that ``LISTEN``s on ``channel``, and sleeps in
    ``select`` on it (no CPU while nothing is written); a lost connection is opened again after ``retry_s`` (the
    poll covers the gap)."""

    def __init__(self, url: str | URL, on_commit: OnCommit, channel: str, *, retry_s: float = 2.0) -> None:
        parsed = make_url(url)
        self._conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_commit, self.channel, self.retry_s = on_commit, channel, retry_s
        self.commits = 0  # notifications seen (a burst that came together counts once)
        self.listening = threading.Event()  # set while the LISTEN is in place (tests wait on it)
        self._thread_init()

    def _watch(self) -> None:
        import psycopg  # the PostgreSQL driver: present wherever such a store is

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self.listening.set()
                    # libpq's calls: a notification reaches on_commit 0.11-0.12 ms after its commit, against 0.17 ms
                    # through Connection.notifies() (docs/benchmarks.md)
                    pgconn = conn.pgconn
                    while True:
                        select.select([conn.fileno(), self._stop_r], [], [])
                        if self._stop.is_set():
                            return
                        pgconn.consume_input()  # what has come; a closed connection raises
                        came = False
                        while pgconn.notifies() is not None:
                            came = True
                        if came:
                            self.commits += 1
                            self.on_commit(self._stop)
            except (psycopg.Error, OSError, ValueError):
                self.listening.clear()
                self._stop.wait(self.retry_s)
