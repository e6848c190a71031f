"""Gateway load reports for the autoscaler: per gateway worker and service, requests in flight and queued.

A worker upserts its rows about once a second for the services with load or whose load changed (``report``), so
an idle platform writes nothing. A row not refreshed within ``fresh_s`` counts as zero: its worker is idle for that
service or gone. A *wake* (a request for an autoscaled service at 0 replicas) is a report plus a touch of the
service in the change feed, so the reconciler acts on it in its next pass (~0.1 s) rather than its next look.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from sqlalchemy import Connection, delete, func, insert, select, update

from arkserve.store import services as service_store
from arkserve.store.tables import gateway_load, services

FRESH_S = 3.0  # a row older than this is a worker that stopped reporting: its load counts as zero


def _upsert(conn: Connection, worker: str, service: str, inflight: int, queued: int, at: float) -> None:
    c = gateway_load.c
    values = {"inflight": inflight, "queued": queued, "reported_at": at}
    if conn.execute(update(gateway_load).where(c.worker == worker, c.service == service)
                    .values(**values)).rowcount == 0:
        conn.execute(insert(gateway_load).values(worker=worker, service=service, **values))


def report(conn: Connection, worker: str, loads: Mapping[str, tuple[int, int]], at: float | None = None) -> None:
    """Record ``worker``'s (in flight, queued) per service."""
    t = time.time() if at is None else at
    for service, (inflight, queued) in loads.items():
        _upsert(conn, worker, service, inflight, queued, t)


def wake(conn: Connection, worker: str, service: str, queued: int) -> bool:
    """A request waits for ``service`` at 0 replicas: report it and touch the service. False: no such service."""
    sid = conn.execute(select(services.c.id).where(services.c.name == service)).scalar_one_or_none()
    if sid is None:
        return False
    _upsert(conn, worker, service, 0, max(1, queued), time.time())
    service_store.touch(conn, int(sid))
    return True


def totals(conn: Connection, fresh_s: float = FRESH_S, now: float | None = None) -> dict[str, int]:
    """In-flight plus queued requests per service, summed over the workers that reported within ``fresh_s``."""
    c = gateway_load.c
    t = time.time() if now is None else now
    q = (select(c.service, func.sum(c.inflight + c.queued)).where(c.reported_at > t - fresh_s)
         .group_by(c.service))
    return {name: int(total or 0) for name, total in conn.execute(q)}


def prune(conn: Connection, older_than_s: float = 3600.0) -> int:
    """Forget rows not refreshed for ``older_than_s`` (gone workers, services idle for long)."""
    return int(conn.execute(delete(gateway_load).where(
        gateway_load.c.reported_at < time.time() - older_than_s)).rowcount or 0)
