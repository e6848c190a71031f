"""Queries on security events: failed and throttled logins (and other password checks), for admins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select

from arkserve.store.db import now
from arkserve.store.tables import security_events

KINDS = ("login_failed",)


def record(conn: Connection, kind: str, username: str, client: str, message: str, *, keep_s: float) -> None:
    """Add an event, and drop those older than ``keep_s`` (the table stays bounded by its own writes)."""
    t = now()
    conn.execute(insert(security_events).values(time=t, kind=kind, username=username[:64], client=client[:64],
                                                message=message[:1000]))
    conn.execute(delete(security_events).where(security_events.c.time < t - keep_s))


def list_events(conn: Connection, *, since: float | None = None, username: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(security_events)
    if since is not None:
        q = q.where(security_events.c.time >= since)
    if username:
        q = q.where(security_events.c.username == username)
    rows = conn.execute(q.order_by(security_events.c.time.desc(), security_events.c.id.desc()).limit(limit))
    return [{k: v for k, v in r._mapping.items() if k != "id"} for r in rows]
