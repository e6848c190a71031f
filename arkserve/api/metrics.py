"""Service metrics for the console: the request log aggregated into time buckets.

``GET /api/v1/services/{name}/metrics?window=15m&step=30s`` returns, per bucket, the request count and
rate, p50/p99 latency and the 4xx and 5xx counts, plus totals, a per-replica request count for the
window and the ready/desired instance counts now. Buckets are aligned to multiples of ``step`` (epoch
based), so successive polls agree on bucket edges; the last bucket is the current, partial one and its
rate is computed over the part that has elapsed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from fastapi import APIRouter
from pydantic import BaseModel

from arkserve.api.security import Caller, Context
from arkserve.api.services import visible_service
from arkserve.domain.durations import parse_duration
from arkserve.errors import ValidationFailed
from arkserve.store import services as service_store
from arkserve.store.metrics import RequestSample, request_samples

router = APIRouter(tags=["services"])

MAX_WINDOW_S = 7 * 86400
MAX_BUCKETS = 1440
SAMPLE_LIMIT = 200_000


class MetricsTotals(BaseModel):
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors_4xx: int
    errors_5xx: int
    inflight: float = 0.0  # requests in flight on average (Little's law: their summed latency / the seconds)


class MetricsBucket(MetricsTotals):
    time: float  # start of the bucket; the same figures as the totals, for this step only


class MetricsOut(BaseModel):
    service: str
    window_s: float
    step_s: float
    start: float
    end: float
    now: float
    ready: int
    desired: int
    totals: MetricsTotals
    by_replica: dict[str, int]
    buckets: list[MetricsBucket]
    truncated: bool


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending sequence; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return round(sorted_values[min(rank, len(sorted_values)) - 1], 3)


def _summary(samples: Sequence[RequestSample], seconds: float) -> MetricsTotals:
    latencies = sorted(s.latency_ms for s in samples)
    return MetricsTotals(requests=len(samples), rps=round(len(samples) / seconds, 6) if seconds > 0 else 0.0,
                         p50_ms=percentile(latencies, 50), p99_ms=percentile(latencies, 99),
                         errors_4xx=sum(1 for s in samples if 400 <= s.status < 500),
                         errors_5xx=sum(1 for s in samples if s.status >= 500),
                         inflight=round(sum(latencies) / 1000 / seconds, 3) if seconds > 0 else 0.0)


def bucket_bounds(now: float, window_s: float, step_s: float) -> tuple[float, float, int]:
    """(start, end, count): ``end`` is the next multiple of ``step`` after ``now``; count covers the window."""
    end = (math.floor(now / step_s) + 1) * step_s
    count = max(1, math.ceil(window_s / step_s))
    return end - count * step_s, end, count


def aggregate(samples: Sequence[RequestSample], *, now: float, window_s: float,
              step_s: float) -> tuple[float, float, list[MetricsBucket], MetricsTotals, dict[str, int]]:
    start, end, count = bucket_bounds(now, window_s, step_s)
    groups: list[list[RequestSample]] = [[] for _ in range(count)]
    by_replica: dict[str, int] = {}
    for s in samples:
        i = int((s.time - start) // step_s)
        if 0 <= i < count:
            groups[i].append(s)
            by_replica[s.replica] = by_replica.get(s.replica, 0) + 1
    buckets = []
    for i, group in enumerate(groups):
        t0 = start + i * step_s
        elapsed = min(step_s, max(now - t0, 1e-9))
        buckets.append(MetricsBucket(time=t0, **_summary(group, elapsed).model_dump()))
    inside = [s for g in groups for s in g]
    totals = _summary(inside, max(now - start, 1e-9))
    return start, end, buckets, totals, dict(sorted(by_replica.items()))


@router.get("/services/{name}/metrics", response_model=MetricsOut,
            summary="Requests/s, p50/p99 latency and errors per time bucket, and ready instances now")
def service_metrics(name: str, caller: Caller, ctx: Context, window: str = "15m", step: str = "30s") -> MetricsOut:
    window_s, step_s = parse_duration(window, "window"), parse_duration(step, "step")
    if window_s > MAX_WINDOW_S:
        raise ValidationFailed("window: at most 7d", field="window")
    if step_s < 1 or window_s / step_s > MAX_BUCKETS:
        raise ValidationFailed(f"step: at least 1s and at most {MAX_BUCKETS} buckets per window", field="step")
    svc = visible_service(ctx, caller, name)
    now = time.time()
    start, end, _ = bucket_bounds(now, window_s, step_s)
    with ctx.store.read() as conn:
        samples, truncated = request_samples(conn, svc.name, since=max(start, svc.created_at), until=end,
                                             limit=SAMPLE_LIMIT)  # not an earlier service's of this name
        reps = service_store.list_replicas(conn, svc.id)
    start, end, buckets, totals, by_replica = aggregate(samples, now=now, window_s=window_s, step_s=step_s)
    return MetricsOut(service=svc.name, window_s=window_s, step_s=step_s, start=start, end=end, now=now,
                      ready=sum(1 for r in reps if r.state == "ready"), desired=svc.replicas, totals=totals,
                      by_replica=by_replica, buckets=buckets, truncated=truncated)
