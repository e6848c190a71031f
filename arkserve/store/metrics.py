"""Raw samples of the per-request log for a time range: what the metrics endpoint aggregates.

Aggregation (buckets, percentiles) happens in Python so that SQLite and PostgreSQL give the same
numbers; the query reads only the columns it needs over the ``(service, time)`` index.

The gateway's own answers to asynchronous requests are not samples: the ``202`` at intake, the status polls
(``GET /async/<id>``) and the result fetches (``GET /async/<id>/result``, which repeat the stored response's
status), none with a replica. Counted, one asynchronous inference was as many requests as its client polled,
and the gateway's millisecond answers pulled the latency percentiles down; the request the dispatcher delivers
to a replica is logged and counted like any other. A request the gateway refused itself (401, 429, 503) still
counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, not_, or_, select

from arkserve.store.tables import request_log


@dataclass(frozen=True)
class RequestSample:
    time: float
    status: int
    latency_ms: float
    replica: str


_c = request_log.c
# the gateway's own answer to an asynchronous request (see the module's docstring): no replica, and the intake's
# 202 (the gateway answers 202 for nothing else) or a status/result fetch (``/async/ar_<32 hex>``)
_ASYNC_ANSWER = and_(_c.replica == "", or_(_c.status == 202, and_(
    _c.method == "GET", _c.path.startswith("/async/ar_", autoescape=True))))


def request_samples(conn: Connection, service: str, *, since: float, until: float,
                    limit: int = 200_000) -> tuple[list[RequestSample], bool]:
    """Samples with ``since <= time < until``, newest first, at most ``limit``; the flag says whether more exist."""
    c = request_log.c
    q = (select(c.time, c.status, c.latency_ms, c.replica)
         .where(c.service == service, c.time >= since, c.time < until, not_(_ASYNC_ANSWER))
         .order_by(c.time.desc()).limit(limit + 1))
    rows = [RequestSample(float(t), int(s), float(lat), str(r or "")) for t, s, lat, r in conn.execute(q)]
    return rows[:limit], len(rows) > limit
