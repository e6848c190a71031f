"""What a gateway worker reports to the autoscaler: the most requests in flight at once since its last report,
not the count at the instant of the report (a short request between two reports left no trace, and a service
getting one request every 4 s was scaled to zero 7 times in 150 s; hostile review, 2026-12-03)."""

from __future__ import annotations

from arkserve.domain.routing import Upstream
from arkserve.gateway.balancer import ReplicaState, ServicePool, SplitPool, release
from arkserve.gateway.load import service_loads


def _pool(split: bool = False) -> ServicePool:
    reps = [ReplicaState(Upstream(f"r{i}", "127.0.0.1", 9000 + i, revision="b" if i == 2 else "a"), 0)
            for i in range(3)]
    return SplitPool("web", reps, "b", 50) if split else ServicePool("web", reps)


def test_a_request_between_two_reports_is_reported() -> None:
    for split in (False, True):
        pool = _pool(split)
        assert service_loads({"web": pool}, {}) == {}
        r = pool.acquire(0.0)
        assert r is not None
        release(r)  # begun and ended before the report
        assert service_loads({"web": pool}, {}) == {"web": (1, 0)}
        assert service_loads({"web": pool}, {}) == {}  # and only once


def test_the_peak_not_the_instant_and_what_stays_in_flight_carries_over() -> None:
    pool = _pool()
    held = [pool.acquire(0.0) for _ in range(5)]  # five at once (spread over three replicas), then four end
    for r in held[1:]:
        release(r)  # type: ignore[arg-type]
    assert service_loads({"web": pool}, {}) == {"web": (5, 0)}
    assert service_loads({"web": pool}, {}) == {"web": (1, 0)}  # the one still in flight
    release(held[0])  # type: ignore[arg-type]
    assert service_loads({"web": pool}, {"web": [object(), object()]}) == {"web": (1, 2)}  # it was in flight
    assert service_loads({"web": pool}, {}) == {}
