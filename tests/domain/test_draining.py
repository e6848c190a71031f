"""The pure drain rule (domain/draining.py) and scale-in's choice of the idle replicas first (domain/planning.py)."""

from __future__ import annotations

from arkserve.domain.draining import drain_limit_s, may_stop, replica_key, replica_of
from arkserve.domain.planning import Desired, Observed, ReplicaState, plan

READY = ReplicaState.READY


def _may(waited: float, clear: float | None, inflight: int = 0, gateways: int = 2, limit: float = 70.0) -> bool:
    return may_stop(waited, caught_up_for=clear, inflight=inflight, gateways=gateways, min_s=0.2, report_s=2.0,
                    limit_s=limit)


def test_a_replica_stops_once_the_gateways_dropped_it_and_report_nothing_on_it() -> None:
    assert not _may(0.1, 5.0)  # not before drain_min_s
    assert not _may(30.0, None)  # a live gateway worker still routes to it
    assert not _may(30.0, 1.0)  # dropped it 1 s ago: its load report may not have named a request yet
    assert _may(30.0, 2.0)
    assert not _may(30.0, 20.0, inflight=1)  # a request is still in flight on it, past the old 10 s cap
    assert _may(0.3, 0.0, gateways=0)  # no gateway worker alive: nobody can have a request on it


def test_the_limit_ends_any_drain() -> None:
    assert _may(70.0, None) and _may(70.0, 60.0, inflight=3)
    assert drain_limit_s(60.0, 10.0) == 70.0  # the service's request timeout, plus the gateways' time to drop it
    assert drain_limit_s(60.0, 10.0, 3600.0) == 3610.0  # asynchronous requests run under the dispatcher's


def test_replica_keys_never_look_like_a_service() -> None:
    assert replica_of(replica_key("r0011aabb")) == "r0011aabb"
    assert replica_of("svc") == ""


def _obs(inflight: dict[str, int]) -> list[Observed]:
    return [Observed(f"r{i}", "a", READY, inflight.get(f"r{i}", 0)) for i in range(3)]  # r0 oldest


def test_scale_in_drains_the_replicas_with_the_fewest_requests_then_the_newest() -> None:
    assert plan(Desired(2, "a"), _obs({})).drain == ("r2",)  # all idle: the newest, as before
    assert plan(Desired(2, "a"), _obs({"r2": 1})).drain == ("r1",)  # the idle ones first
    assert plan(Desired(1, "a"), _obs({"r2": 1, "r0": 4})).drain == ("r1", "r2")
    assert plan(Desired(0, "a"), _obs({"r1": 1})).drain == ("r2", "r0", "r1")


def test_a_rolling_update_takes_the_idle_old_replicas_first() -> None:
    observed = [Observed("o0", "old", READY), Observed("o1", "old", READY, 2), Observed("n0", "new", READY)]
    assert plan(Desired(2, "new", max_surge=1), observed).drain == ("o0",)
