"""Pages of a service's events, newest page first: keyset on (time, id) over ``ix_events_service_time``.

The first page is the newest ``limit`` events; each further page is the ``limit`` events before the
oldest one already shown, so events recorded while a client pages back never shift what it sees.
Each page lists its events oldest first, like ``events.list_events``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from arkserve.store.tables import events


@dataclass(frozen=True)
class EventPage:
    rows: list[dict[str, Any]]  # oldest first
    total: int  # events of the service (since ``since``), on all pages
    before: tuple[float, int] | None  # (time, id) to continue before when older events remain, else None


def page(conn: Connection, service: str, *, since: float | None, before: tuple[float, int] | None,
         limit: int) -> EventPage:
    where = [events.c.service == service]
    if since is not None:
        where.append(events.c.time >= since)
    total = int(conn.execute(select(func.count()).select_from(events).where(*where)).scalar_one())
    if before is not None:
        t, i = before
        where.append(or_(events.c.time < t, and_(events.c.time == t, events.c.id < i)))
    q = select(events).where(*where).order_by(events.c.time.desc(), events.c.id.desc()).limit(limit + 1)
    rows = [dict(r._mapping) for r in conn.execute(q)]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return EventPage(rows[::-1], total, (float(last["time"]), int(last["id"])) if more and last else None)
