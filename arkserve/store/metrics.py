"""Raw samples of the per-request log for a time range: what the metrics endpoint aggregates.

Aggregation (buckets, percentiles) happens in Python so that SQLite and PostgreSQL give the same
numbers; the query reads only the three columns it needs over the ``(service, time)`` index.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from arkserve.store.tables import request_log


@dataclass(frozen=True)
class RequestSample:
    time: float
    status: int
    latency_ms: float
    replica: str


def request_samples(conn: Connection, service: str, *, since: float, until: float,
                    limit: int = 200_000) -> tuple[list[RequestSample], bool]:
    """Samples with ``since <= time < until``, newest first, at most ``limit``; the flag says whether more exist."""
    c = request_log.c
    q = (select(c.time, c.status, c.latency_ms, c.replica)
         .where(c.service == service, c.time >= since, c.time < until)
         .order_by(c.time.desc()).limit(limit + 1))
    rows = [RequestSample(float(t), int(s), float(lat), str(r or "")) for t, s, lat, r in conn.execute(q)]
    return rows[:limit], len(rows) > limit
