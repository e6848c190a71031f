"""Queries on the asynchronous-inference queue (``async_requests``): intake, leased claims, results, callbacks, purge.

A row moves ``queued → running → succeeded | failed``. A dispatcher *claims* rows with a lease (``lease_owner``,
``lease_until``): a queued row whose ``next_at`` has come, or a running row whose lease ran out (its dispatcher
died). Every later write names the owner and checks the row is still its own, so a dispatcher that lost its lease
can never write a second result: one result record per request. Callbacks are claimed the same way once a row has
its result (``callback_state = 'pending'``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from arkserve.store.tables import async_requests as t
from arkserve.store.tables import services

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
_SUMMARY = [c for c in t.c if c.name not in ("body", "result_body")]


def insert_request(conn: Connection, row: dict[str, Any]) -> None:
    """A new queued request (``row`` names at least id, service, method, path, headers, created_at)."""
    values = {"status": QUEUED, "attempts": 0, "next_at": row["created_at"], "lease_owner": "", "lease_until": 0.0,
              "callback_state": "none", "callback_attempts": 0, "callback_next_at": 0.0, "access_key": "",
              "body_size": 0, **row}
    conn.execute(insert(t).values(**values))


def get(conn: Connection, request_id: str, *, with_bodies: bool = False) -> dict[str, Any] | None:
    row = conn.execute(select(*(t.c if with_bodies else _SUMMARY)).where(t.c.id == request_id)).first()
    return dict(row._mapping) if row is not None else None


def _due(now: float) -> Any:
    return or_(and_(t.c.status == QUEUED, t.c.next_at <= now), and_(t.c.status == RUNNING, t.c.lease_until < now))


def _callback_due(now: float) -> Any:
    return and_(t.c.callback_state == "pending", t.c.callback_next_at <= now, t.c.lease_until < now)


def anything_due(conn: Connection, now: float, full: Sequence[str] = ()) -> tuple[bool, bool]:
    """(requests to claim, callbacks to claim): two indexed reads, so an idle dispatcher never takes the write
    lock (SQLite has one). Requests of the services ``full`` (they have their share in flight) do not count."""
    query = select(t.c.id).where(_due(now))
    if full:
        query = query.where(t.c.service.not_in(list(full)))
    requests = conn.execute(query.limit(1)).first() is not None
    hooks = conn.execute(select(t.c.id).where(_callback_due(now)).limit(1)).first() is not None
    return requests, hooks


def claim(conn: Connection, owner: str, now: float, lease_s: float, limit: int, *, per_service: int = 0,
          busy: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` requests to send, oldest first, now leased to ``owner`` (their bodies included).

    With ``per_service``, no service gets more than that many in flight, counting ``busy`` (the caller's requests
    in flight, per service): a service that has its share is left out of the query (``NOT IN``), so one
    service's backlog of old rows never hides another's newer one. Each round of the loop either fills the
    claim or leaves one more service out, so it ends within a few indexed reads."""
    due = _due(now)
    held = Counter(busy or {})
    out: list[dict[str, Any]] = []
    while len(out) < limit:
        query = select(t.c.id, t.c.service).where(due)
        full = [s for s, n in held.items() if per_service and n >= per_service]
        if full:
            query = query.where(t.c.service.not_in(full))
        rows = conn.execute(query.order_by(t.c.created_at).limit(limit - len(out))).all()
        passed = False
        for rid, service in rows:
            if per_service and held[service] >= per_service:
                passed = True  # its share was reached in this round: the next round leaves it out
                continue
            # conditional update: a row another dispatcher claimed in between is skipped
            n = conn.execute(update(t).where(t.c.id == rid, due).values(
                status=RUNNING, lease_owner=owner, lease_until=now + lease_s, attempts=t.c.attempts + 1,
                started_at=func.coalesce(t.c.started_at, now))).rowcount
            if n == 1:
                row = get(conn, rid, with_bodies=True)
                if row is not None:
                    out.append(row)
                    held[service] += 1
        if not passed:
            break
    return out


def renew(conn: Connection, owner: str, ids: Iterable[str], until: float) -> int:
    """Extend the leases ``owner`` still holds (a long request keeps its claim)."""
    ids = list(ids)
    if not ids:
        return 0
    return int(conn.execute(update(t).where(t.c.id.in_(ids), t.c.lease_owner == owner)
                            .values(lease_until=until)).rowcount)


def requeue(conn: Connection, request_id: str, owner: str, next_at: float, error: str) -> bool:
    """Back to the queue (the app was not reached, or the platform was away): tried again at ``next_at``."""
    n = conn.execute(update(t).where(t.c.id == request_id, t.c.lease_owner == owner, t.c.status == RUNNING)
                     .values(status=QUEUED, next_at=next_at, lease_owner="", lease_until=0.0,
                             error=error[:2000])).rowcount
    return bool(n == 1)


def finish(conn: Connection, request_id: str, owner: str, *, now: float, status: str, retention_s: float,
           result_status: int | None = None, result_headers: list[list[str]] | None = None,
           result_body: bytes | None = None, result_file: str | None = None, result_size: int | None = None,
           error: str | None = None) -> bool:
    """Store the one result of a request ``owner`` holds; False when its lease was lost (the result is dropped).
    The request's body is never sent again: the row forgets it (the caller removes its file)."""
    n = conn.execute(update(t).where(t.c.id == request_id, t.c.lease_owner == owner, t.c.status == RUNNING).values(
        status=status, finished_at=now, expires_at=now + retention_s, result_status=result_status,
        result_headers=result_headers, result_body=result_body, result_file=result_file, result_size=result_size,
        error=error[:2000] if error else None, lease_owner="", lease_until=0.0, body=None, body_file=None)).rowcount
    if n != 1:
        return False
    conn.execute(update(t).where(t.c.id == request_id, t.c.callback_url.is_not(None), t.c.callback_url != "")
                 .values(callback_state="pending", callback_next_at=now))
    return True


def claim_callbacks(conn: Connection, owner: str, now: float, lease_s: float, limit: int) -> list[dict[str, Any]]:
    """Finished requests whose callback is due, leased to ``owner`` (result bodies included)."""
    due = _callback_due(now)
    ids = [r.id for r in conn.execute(select(t.c.id).where(due).order_by(t.c.callback_next_at).limit(limit))]
    out = []
    for rid in ids:
        if conn.execute(update(t).where(t.c.id == rid, due).values(
                lease_owner=owner, lease_until=now + lease_s,
                callback_attempts=t.c.callback_attempts + 1)).rowcount == 1:
            row = get(conn, rid, with_bodies=True)
            if row is not None:
                out.append(row)
    return out


def callback_outcome(conn: Connection, request_id: str, owner: str, state: str, next_at: float = 0.0) -> bool:
    """After an attempt: ``delivered``, ``failed`` (given up) or ``pending`` again at ``next_at``."""
    n = conn.execute(update(t).where(t.c.id == request_id, t.c.lease_owner == owner).values(
        callback_state=state, callback_next_at=next_at, lease_owner="", lease_until=0.0)).rowcount
    return bool(n == 1)


def purge(conn: Connection, now: float, limit: int = 1000) -> list[str]:
    """Delete finished requests past their retention; return their files (body and result) to remove."""
    rows = conn.execute(select(t.c.id, t.c.body_file, t.c.result_file)
                        .where(t.c.expires_at.is_not(None), t.c.expires_at < now,
                               t.c.callback_state != "pending").limit(limit)).all()
    if not rows:
        return []
    conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
    return [f for r in rows for f in (r.body_file, r.result_file) if f]


def queued_bytes(conn: Connection, user_id: int | None, service: str) -> int:
    """Bytes of request bodies a user has waiting (queued or running): what ``asyncq.user_queued_bytes`` bounds.
    A public service's anonymous requests (no user) count together, per service."""
    who = t.c.user_id == user_id if user_id is not None else and_(t.c.user_id.is_(None), t.c.service == service)
    used = conn.execute(select(func.coalesce(func.sum(t.c.body_size), 0))
                        .where(t.c.status.in_((QUEUED, RUNNING)), who)).scalar()
    return int(used or 0)


def named_files(conn: Connection, names: list[str]) -> set[str]:
    """Which of the files ``names`` (``<id>.req``, ``<id>.res``) a row still names."""
    ids = sorted({n.split(".", 1)[0] for n in names})
    named: set[str] = set()
    for i in range(0, len(ids), 500):
        for r in conn.execute(select(t.c.body_file, t.c.result_file).where(t.c.id.in_(ids[i:i + 500]))):
            named.update(f for f in r if f)
    return named & set(names)


def queue_depth(conn: Connection) -> dict[str, dict[str, int]]:
    """Per service, how many requests are queued and running (the Prometheus gauge; an autoscaler input)."""
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute(select(t.c.service, t.c.status, func.count()).where(t.c.status.in_((QUEUED, RUNNING)))
                          .group_by(t.c.service, t.c.status)):
        out.setdefault(r[0], {QUEUED: 0, RUNNING: 0})[r[1]] = int(r[2])
    return out


def service_target(conn: Connection, name: str, asked_at: float) -> tuple[int | None, int, float] | None:
    """(gateway port, owner id, created_at) of the service a request made at ``asked_at`` went to, or None when
    it no longer exists (the dispatcher's address book). A service of that name created since is another one
    (the name was freed and taken again, perhaps by another user): None too, so a request never reaches, nor a
    callback is signed for, a service it was not sent to."""
    row = conn.execute(select(services.c.gateway_port, services.c.owner_id, services.c.created_at)
                       .where(services.c.name == name)).first()
    return (row[0], int(row[1]), float(row[2])) if row is not None and row[2] <= asked_at else None
