"""Store writes a pass commits together: one transaction for many replicas instead of one (or two) each.

A scale 0 -> 500 or 500 -> 0 used to commit about seven times per replica, each commit waiting for the
store's fsync. :class:`PassWrites` collects one service pass's replica rows and events (the worker's thread
only) and commits them in one transaction at :meth:`PassWrites.flush`; what must follow the commit (a
drain's routing target, a crashed replica's stop, the "ready" routing version) runs as a callback after it,
never before, so a stop still comes after the row that says why, and a drain still waits for the gateways to
load the snapshot without the replica. A write the worker does not defer is added and flushed at once, so
the store sees every write in the order the pass made it. The placer places a pass's new replicas at the start
of the flush's transaction (``flush(first=...)``), so their rows are written once, already placed.

:class:`GroupCommit` does the same for writes from many threads (the drain threads deleting the replicas
they stopped): each caller's write joins the open group, one of the callers commits the group, and each
caller returns once its own write is committed (or raises what the commit raised).

Crash safety is that of the unbatched writes: a reconciler killed before a flush loses only writes whose
effects the next pass or adoption sees again (a replica started but still ``pending`` in the store is failed
by adoption and restarted under its id; a stopped replica still ``draining`` is stopped again and deleted).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection

from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, version
from arkserve.store.services import ReplicaRow


class PassWrites:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows: dict[str, tuple[ReplicaRow, bool]] = {}  # replica id -> (row, moves routing)
        self.events: list[tuple[str, str, str, str]] = []
        self.after: list[Callable[[int], object]] = []  # called with the routing version once committed

    def __len__(self) -> int:
        return len(self.rows) + len(self.events)

    def save(self, rep: ReplicaRow, routing: bool = False) -> None:
        self.rows[rep.id] = (rep, routing or (rep.id in self.rows and self.rows[rep.id][1]))

    def event(self, service: str, kind: str, message: str, replica: str = "") -> None:
        self.events.append((service, kind, message, replica))

    def on_commit(self, call: Callable[[int], object]) -> None:
        self.after.append(call)

    def flush(self, first: Callable[[Connection], object] | None = None) -> int:
        """Commit what was collected (nothing when empty); returns the routing version after the commit.

        ``first`` runs at the start of the same transaction, before the collected writes (which include any it
        adds or changes): the placer places a pass's new replicas there, so their rows are written once, placed
        (``Placer.assign_many``). When the transaction fails, what was collected is dropped, as always."""
        if first is None and not self.rows and not self.events and not self.after:
            return 0
        try:
            with self.store.begin() as conn:
                if first is not None:
                    first(conn)
                rows, events, after = self._take()
                service_store.save_replicas(conn, [rep for rep, _ in rows], routing_changed=any(r for _, r in rows))
                routed = version(conn)
                for service, kind, message, replica in events:
                    event_store.record(conn, service, kind, message, replica)
        except BaseException:
            self._take()
            raise
        for call in after:
            call(routed)
        return routed

    def _take(self) -> tuple[list[tuple[ReplicaRow, bool]], list[tuple[str, str, str, str]],
                             list[Callable[[int], object]]]:
        taken = list(self.rows.values()), self.events, self.after
        self.rows, self.events, self.after = {}, [], []
        return taken


class _Ticket:
    def __init__(self, write: Callable[[Connection], None]) -> None:
        self.write, self.done = write, threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._queue: list[_Ticket] = []
        self._busy = False  # a caller is committing groups

    def run(self, write: Callable[[Connection], None]) -> None:
        """Run ``write`` in a transaction shared with the other callers' writes of the moment."""
        mine = _Ticket(write)
        with self._lock:
            self._queue.append(mine)
            lead, self._busy = not self._busy, True
        if lead:
            self._commit_groups()
        mine.done.wait()
        if mine.error is not None:
            raise mine.error

    def _commit_groups(self) -> None:
        while True:
            with self._lock:
                group, self._queue = self._queue, []
                if not group:
                    self._busy = False
                    return
            error: BaseException | None = None
            try:
                with self.store.begin() as conn:
                    for ticket in group:
                        ticket.write(conn)
            except Exception as exc:  # every write of the group is retried by its own caller's next pass
                error = exc
            for ticket in group:
                ticket.error = error
                ticket.done.set()
