"""Queries on service events and the per-request log written by the gateway."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from arkserve.store.db import now
from arkserve.store.tables import events, request_log


def record(conn: Connection, service: str, kind: str, message: str, replica: str = "") -> None:
    conn.execute(insert(events).values(service=service, replica=replica, time=now(), kind=kind,
                                       message=message[:4000]))


def list_events(conn: Connection, service: str, *, since: float | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    q = select(events).where(events.c.service == service)
    if since is not None:
        q = q.where(events.c.time >= since)
    rows = conn.execute(q.order_by(events.c.time.desc(), events.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in reversed(list(rows))]


REQUEST_FIELDS = ("time", "service", "replica", "method", "path", "status", "latency_ms", "bytes_in",
                  "bytes_out", "access_key", "client", "request_id", "revision")


def insert_requests(conn: Connection, records: Iterable[Mapping[str, Any]]) -> int:
    rows = [{**{k: r.get(k) for k in REQUEST_FIELDS}, "revision": r.get("revision") or ""} for r in records]
    if rows:
        conn.execute(insert(request_log), rows)
    return len(rows)


def list_requests(conn: Connection, service: str, *, replica: str | None = None, since: float | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    q = select(request_log).where(request_log.c.service == service)
    if replica:
        q = q.where(request_log.c.replica == replica)
    if since is not None:
        q = q.where(request_log.c.time >= since)
    rows = conn.execute(q.order_by(request_log.c.time.desc(), request_log.c.id.desc()).limit(limit))
    return [{k: r._mapping[k] for k in REQUEST_FIELDS} for r in rows]


def prune(conn: Connection, older_than_s: float) -> None:
    cutoff = now() - older_than_s
    conn.execute(delete(events).where(events.c.time < cutoff))
    conn.execute(delete(request_log).where(request_log.c.time < cutoff))
