"""Ending the loop's pause as soon as someone commits to a SQLite store while the reconciler has nothing to do.

The loop reads the change feed every ``wake_poll_s`` (0.1 s), so a scale written by the API waited 0-100 ms
(about 50 on average) before a pass saw it. A :class:`StoreWake` watches the store's directory with inotify
(Linux): a commit writes its pages to ``<db>-wal`` first, which wakes one thread (reads write nothing and
wake nothing; an idle store costs nothing). The pages are written before the commit is visible, so the thread
then checks for the commit to show on a read-only connection of its own (``PRAGMA data_version`` changes when
another connection committed: a few microseconds, no disk read), 1 ms apart and backing off to 50 ms, for up to
``visible_within_s`` (2 s): nothing signals the moment a commit becomes visible, and a busy box can deschedule
the writer between its WAL write and that moment for far longer than the usual microseconds.
Then, only if the reconciler is quiet (no service's pass running or carried over), it sets the loop's wake-up
event and the next pass starts at once. A commit seen while a pass runs wakes the loop once that pass ends (it
may have read the feed before the commit: a scale landing mid-pass is not left for the next poll); so a busy
reconciler's own workers' commits make one more pass after the busy spell, not a pass every few milliseconds
(each lists the runtime).

Nothing changes in what a pass does, only when it runs; the fixed poll stays the fallback (and the only
wake-up on PostgreSQL, or where inotify is missing). The API and the reconciler never import each other: the
store's files are the only thing they share.
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

from sqlalchemy.engine import URL, make_url

_IN_MODIFY = 0x2
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)


class StoreWake:
    """Sets ``woken`` when another connection's commit to the SQLite file ``database`` becomes visible while
    ``quiet()`` says the reconciler is idle. :meth:`start` and :meth:`close` run and end its thread."""

    def __init__(self, database: str, woken: threading.Event, quiet: Callable[[], bool], *,
                 visible_within_s: float = 2.0) -> None:
        path = Path(database).resolve()
        self.woken, self.quiet, self.visible_within_s = woken, quiet, visible_within_s
        self.names = {path.name.encode(), f"{path.name}-wal".encode()}
        self.commits = 0  # commits seen (each may or may not have woken the loop)
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
        self._stop = threading.Event()
        self._stop_r, self._stop_w = os.pipe()  # a byte on it ends the thread's select at once
        self._thread = threading.Thread(target=self._run, name="ark-storewake", daemon=True)

    @classmethod
    def for_url(cls, url: str | URL, woken: threading.Event, quiet: Callable[[], bool]) -> StoreWake | None:
        """A wake for a file-backed SQLite store; None for anything else (PostgreSQL, in-memory, no inotify)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
            return None
        try:
            return cls(parsed.database, woken, quiet)
        except (OSError, sqlite3.Error, AttributeError):
            return None

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """End the thread without waiting for it (it releases what it holds as it ends)."""
        started = self._thread.ident is not None
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if not started:
            self._release()

    def _release(self) -> None:
        for fd in (self._fd, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._conn.close()

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

    def _run(self) -> None:
        try:
            self._watch()
        finally:
            self._release()

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
                while not self.quiet():  # a pass is running: wake the loop as it ends, or this commit (a scale
                    if self._stop.wait(0.005):  # landing mid-pass, after that pass read the feed) waits for the poll
                        return
                self.woken.set()
            except (OSError, ValueError, sqlite3.Error):
                if self._stop.is_set():
                    return
                time.sleep(0.1)
