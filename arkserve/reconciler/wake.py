"""Ending the loop's pause as soon as someone commits to the store while the reconciler has nothing to do.

The loop reads the change feed every ``wake_poll_s`` (0.1 s), so a scale written by the API waited 0-100 ms
(about 50 on average) before a pass saw it. A watcher of :mod:`arkserve.store.wake` (inotify on a SQLite file;
``LISTEN`` on :data:`~arkserve.store.services.CHANGES_CHANNEL` on PostgreSQL, which every change-feed entry
notifies) sees each commit. Then, only if the reconciler is quiet (no service's pass running or carried over),
it sets the loop's wake-up event and the next pass starts at once. A commit seen while a pass runs wakes the loop
once that pass ends (it may have read the feed before the commit: a scale landing mid-pass is not left for the
next poll); so a busy reconciler's own workers' commits make one more pass after the busy spell, not a pass every
few milliseconds (each lists the runtime).

Nothing changes in what a pass does, only when it runs; the fixed poll stays the fallback. The API and the
reconciler never import each other: the store is the only thing they share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import URL

from arkserve.store import wake as store_wake
from arkserve.store.services import CHANGES_CHANNEL
from arkserve.store.wake import Wake

__all__ = ["Wake", "for_url"]


def for_url(url: str | URL, woken: threading.Event, quiet: Callable[[], bool]) -> Wake | None:
    """A watcher of the store at ``url`` that sets ``woken`` on each commit once ``quiet()``; None where the store
    cannot be watched (the poll alone then)."""
    return store_wake.for_url(url, lambda stop: _when_quiet(quiet, woken, stop), CHANGES_CHANNEL)


def _when_quiet(quiet: Callable[[], bool], woken: threading.Event, stop: threading.Event) -> None:
    """Set ``woken`` once ``quiet()``: a pass is running, so wake the loop as it ends (this commit may be a scale
    landing mid-pass, after that pass read the feed), or as soon as nothing runs."""
    while not quiet():
        if stop.wait(0.005):
            return
    woken.set()
