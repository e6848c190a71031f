"""Where routing snapshots come from, and the holder that swaps them in atomically.

A :class:`SnapshotSource` answers ``version()`` cheaply and ``load()`` a full snapshot; both may
block (they run in a thread). :class:`SnapshotHolder` polls the version every ``poll_s``. A source that can
``watch(on_commit)`` (the store's: :meth:`arkserve.store.routing.StoreSnapshotSource.watch`) says when a commit may
have moved it; the holder then looks at once (at most once per :data:`MIN_GAP_S`, so a burst of commits is read
together) and polls only every :data:`WATCHED_POLL_S`, the fallback should a signal be lost. When the version
moves, the holder loads and applies the new snapshot on the event loop thread (one attribute swap;
requests already in flight keep the objects they hold), then tells the source it is applied (the store's
source acknowledges the version only then). Errors keep the last snapshot. A snapshot may say what changed
since the one of its ``base`` version (the store's source does after its first load); the worker then
applies only that (``Core.apply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from arkserve.domain.routing import EMPTY_SNAPSHOT, RoutingSnapshot
from arkserve.outage import OutageLog

log = logging.getLogger("arkserve.gateway.snapshot")

MIN_GAP_S = 0.01  # between two looks at a watched source: the commits of a burst are read together
WATCHED_POLL_S = 1.0  # the poll of a watched source (its heartbeat acknowledgements need one every 2 s)


@runtime_checkable
class SnapshotSource(Protocol):
    def load(self) -> RoutingSnapshot: ...

    def version(self) -> int: ...

    def applied(self, version: int) -> None:
        """Told once the snapshot of ``version`` serves requests (the store acknowledges it only then)."""
        ...


class StaticSource:
    """An in-memory source; ``set()`` publishes a new snapshot (tests, embedding, benchmarks)."""

    def __init__(self, snapshot: RoutingSnapshot = EMPTY_SNAPSHOT) -> None:
        self._lock = threading.Lock()
        self._snapshot = snapshot

    def set(self, snapshot: RoutingSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot

    def load(self) -> RoutingSnapshot:
        with self._lock:
            return self._snapshot

    def version(self) -> int:
        with self._lock:
            return self._snapshot.version

    def applied(self, version: int) -> None:
        """Nobody waits on an in-memory source."""


class SnapshotHolder:
    def __init__(self, source: SnapshotSource, on_change: Callable[[RoutingSnapshot], None],
                 poll_s: float = 0.5) -> None:
        self.source = source
        self.current: RoutingSnapshot = EMPTY_SNAPSHOT
        self._on_change = on_change
        self._poll_s = poll_s
        self._task: asyncio.Task[None] | None = None
        self._nudge = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None
        self.errors = 0
        # a store outage fails every poll of every worker: said once, then once a minute, then "works again"
        self._away = OutageLog(log, "routing snapshot source failed")

    async def refresh(self) -> bool:
        """Check the source once; apply a new snapshot if its version moved. False on error."""
        loop = asyncio.get_running_loop()
        try:
            version = await loop.run_in_executor(None, self.source.version)
            if version == self.current.version and self.current is not EMPTY_SNAPSHOT:
                self._away.ok()
                return True
            snap = await loop.run_in_executor(None, self.source.load)
        except Exception as exc:
            self.errors += 1
            self._away.failed(f"keeping version {self.current.version}: {exc}")
            return False
        self._away.ok()
        if snap is not self.current:
            self.current = snap
            self._on_change(snap)
            # only now, with the snapshot serving: an API call that waits for this ack (a key change) or a
            # drain must not see it while a request could still be handled by the previous snapshot
            await loop.run_in_executor(None, self.source.applied, snap.version)
        return True

    async def _run(self) -> None:
        nudge = self._nudge
        while True:
            with contextlib.suppress(TimeoutError):  # the poll: the fallback of a watched source
                await asyncio.wait_for(nudge.wait(), self._poll_s)
            nudge.clear()
            await self.refresh()
            if self._unwatch is not None:
                await asyncio.sleep(MIN_GAP_S)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        watch: Callable[[Callable[[], None]], Callable[[], None] | None] | None = getattr(self.source, "watch", None)
        if watch is not None:  # called on the watcher's thread; the loop may be closing
            def nudged() -> None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._nudge.set)
            self._unwatch = watch(nudged)
            if self._unwatch is not None:
                self._poll_s = max(self._poll_s, WATCHED_POLL_S)
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
