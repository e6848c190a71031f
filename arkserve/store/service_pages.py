"""Pages of the services list: keyset on the (unique) name, filters, a total count, and the page's replicas.

A page is ``name > after ORDER BY name LIMIT n`` on the unique index of ``services.name``, never an
OFFSET: its cost does not grow with how far into the list it is, and a service created or deleted
while a client pages neither duplicates nor skips any other row. The count and the page come from
one read transaction, so they agree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from arkserve.store.services import ReplicaRow, ServiceRow, _select, _service
from arkserve.store.tables import replicas, services, users


@dataclass(frozen=True)
class Filters:
    """Which services a list shows. ``owner_id`` is the caller's scope (None: every owner, for admins);
    ``owner`` filters by user name on top of it."""

    owner_id: int | None = None
    prefix: str = ""
    status: str = ""
    owner: str = ""


@dataclass(frozen=True)
class Page:
    rows: list[ServiceRow]
    replicas: dict[int, list[ReplicaRow]]  # by service id, for the rows of this page only
    total: int  # every service the filters match, on all pages
    last: str | None  # the name to continue after when there are more rows, else None


def _where(f: Filters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.owner_id is not None:
        conds.append(services.c.owner_id == f.owner_id)
    if f.prefix:
        conds.append(services.c.name.startswith(f.prefix, autoescape=True))
    if f.status:
        conds.append(services.c.status == f.status)
    if f.owner:
        conds.append(users.c.username == f.owner)
    return conds


def _count(conn: Connection, f: Filters) -> int:
    q: Any = select(func.count()).select_from(services)
    if f.owner:
        q = q.join(users, users.c.id == services.c.owner_id)
    return int(conn.execute(q.where(*_where(f))).scalar_one())


def page(conn: Connection, f: Filters, *, after: str | None, limit: int) -> Page:
    """Up to ``limit`` services in name order after the name ``after`` (None: from the start)."""
    q = _select().where(*_where(f))
    if after is not None:
        q = q.where(services.c.name > after)
    rows = [_service(r) for r in conn.execute(q.order_by(services.c.name).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    by_service: dict[int, list[ReplicaRow]] = {s.id: [] for s in rows}
    if rows:
        reps = select(replicas).where(replicas.c.service_id.in_(list(by_service)))
        for r in conn.execute(reps.order_by(replicas.c.started_at, replicas.c.id)):
            by_service[r.service_id].append(ReplicaRow(**dict(r._mapping)))
    return Page(rows, by_service, _count(conn, f), rows[-1].name if more else None)
