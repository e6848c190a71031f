"""Gateway load reports for the autoscaler: per gateway worker and service, requests in flight and queued.

A worker upserts its rows about once a second for the services with load or whose load changed (``report``), so
an idle platform writes nothing. A row not refreshed within ``fresh_s`` counts as zero: its worker is idle for that
service or gone. A *wake* (a request for an autoscaled service at 0 replicas) is a report plus a touch of the
service in the change feed, so the reconciler acts on it in its next pass (~0.1 s) rather than its next look.

The same rows carry each replica's requests in flight, under the key ``@<replica id>`` (``domain/draining.py``;
a service name never starts with ``@``): the reconciler stops a draining replica only once no fresh row names a
request on it (:func:`replicas_inflight`), and scales in the idle replicas first. :func:`totals` leaves them out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, delete, func, insert, select, update

from arkserve.domain.draining import REPLICA_KEY, replica_key, replica_of
from arkserve.store import services as service_store
from arkserve.store.tables import gateway_acks, gateway_load, services

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
    q = (select(c.service, func.sum(c.inflight + c.queued))
         .where(c.reported_at > t - fresh_s, ~c.service.startswith(REPLICA_KEY, autoescape=True))
         .group_by(c.service))
    return {name: int(total or 0) for name, total in conn.execute(q)}


def replicas_inflight(conn: Connection, replicas: Iterable[str], fresh_s: float = FRESH_S,
                      now: float | None = None) -> dict[str, int]:
    """Requests in flight on each of ``replicas`` (those with some), summed over the gateway workers that reported
    within ``fresh_s``."""
    keys = [replica_key(r) for r in replicas]
    if not keys:
        return {}
    c = gateway_load.c
    t = time.time() if now is None else now
    q = (select(c.service, func.sum(c.inflight)).where(c.reported_at > t - fresh_s, c.service.in_(keys))
         .group_by(c.service))
    return {replica_of(key): int(n) for key, n in conn.execute(q) if n}


def live_gateways(conn: Connection, fresh_s: float) -> int:
    """Gateway workers that acknowledged a routing snapshot (or its heartbeat) within ``fresh_s``."""
    return int(conn.execute(select(func.count()).select_from(gateway_acks)
                            .where(gateway_acks.c.seen_at > time.time() - fresh_s)).scalar_one())


def prune(conn: Connection, older_than_s: float = 3600.0) -> int:
    """Forget rows not refreshed for ``older_than_s`` (gone workers, services idle for long)."""
    return int(conn.execute(delete(gateway_load).where(
        gateway_load.c.reported_at < time.time() - older_than_s)).rowcount or 0)
