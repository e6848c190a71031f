"""Fencing a leader's store writes with its lease: a deposed reconciler cannot write after another took over.

The elector stops a leader from acting before its lease can expire (``leases/elector.py``), which rests on
bounded pauses: a process frozen between its last check and a commit (a long GC, a stopped VM) could still
write once it wakes. With the store's own lease that gap is closed here. Every write transaction of a fenced
store first reads the lease row and goes on only if it still names this process with its fencing token; on
PostgreSQL the read takes a share lock on the row (``FOR SHARE``), so a candidate's takeover (an ``UPDATE`` of
that row) waits until the transactions that passed the check have ended, and every write that follows the
takeover fails the check. On SQLite the writer's ``BEGIN IMMEDIATE`` already excludes the takeover.

A refused transaction raises :class:`NotLeading` before any statement of the caller ran; read transactions are
not fenced. The Kubernetes ``Lease`` is not in the store and cannot fence it this way (docs/kubernetes.md)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, event, select

from arkserve.errors import StoreUnavailable
from arkserve.store.db import Store
from arkserve.store.tables import leases


class NotLeading(StoreUnavailable):
    """This process no longer holds the lease its writes are fenced by (temporary: it may lead again)."""

    code = "NotLeading"


def install(store: Store, lease: str, held: Callable[[], tuple[str, int | None]]) -> None:
    """Fence ``store``'s write transactions by lease ``lease``; ``held()`` says (holder, token) as this
    process last won it (token ``None``: never won). Give the fenced parts a store of their own: the lease's
    own renewals must not be fenced."""
    check = select(leases.c.holder, leases.c.token).where(leases.c.name == lease)
    if store.engine.dialect.name == "postgresql":
        check = check.with_for_update(read=True)

    @event.listens_for(store.engine, "begin")
    def _fence(conn: Connection) -> None:
        if conn.get_execution_options().get("ark_read_only", False):
            return
        holder, token = held()
        row = conn.execute(check).first()
        if token is None or row is None or (row[0], row[1]) != (holder, token):
            current = f"{row[0] or 'nobody'} (token {row[1]})" if row is not None else "nobody"
            raise NotLeading(f"not the leader: the {lease} lease is held by {current}, not by this process "
                             f"(token {token}); nothing written")
