"""The reconciler's schedule: busy services every pass, serving ones at the probe cadence, a resync spread out."""

from __future__ import annotations

from dataclasses import replace

from arkserve.domain.services import revision
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.loop import SCALED_TO_ZERO, idle
from arkserve.reconciler.schedule import Schedule, busy
from arkserve.reconciler.worker import summarize
from arkserve.store.services import ReplicaRow, ServiceRow

SPEC = {"image": "img", "command": "serve", "port": 8000}


def _svc(sid: int, replicas: int = 1, deleting: bool = False) -> ServiceRow:
    return ServiceRow(sid, f"s{sid}", 1, "owner", SPEC, replicas, 1, None, "ready", "", "", deleting, 0.0, 0.0)


def _rep(state: str, rev: str | None = None) -> ReplicaRow:
    return ReplicaRow(f"r{state}", 1, rev or revision(SPEC), state)


def test_busy_is_anything_that_still_moves_or_differs_from_the_ask() -> None:
    assert not busy(_svc(1), [_rep("ready")])
    assert not busy(_svc(1, replicas=0), [])
    for state in ("starting", "draining", "failed", "pending"):
        assert busy(_svc(1), [_rep(state)])
    assert busy(_svc(1, replicas=2), [_rep("ready")])  # one to start
    assert busy(_svc(1), [_rep("ready", rev="old")])  # a rollout
    assert busy(_svc(1, replicas=0, deleting=True), [])  # still to be removed


def test_the_loop_skips_exactly_what_a_pass_would_leave_alone() -> None:
    stopped = replace(_svc(1, replicas=0), status="stopped", reason="ScaledToZero", message="0 replicas desired")
    assert summarize(stopped, [], ReconcilerConfig()) == SCALED_TO_ZERO
    assert idle(stopped, [], {}, ReconcilerConfig())
    assert not idle(replace(stopped, status="pending"), [], {}, ReconcilerConfig())  # its status is to be written
    assert not idle(replace(stopped, replicas=1), [], {}, ReconcilerConfig())
    assert not idle(stopped, [_rep("draining")], {}, ReconcilerConfig())
    assert not idle(replace(stopped, canary_spec={"image": "/app"}), [], {}, ReconcilerConfig())  # its canary starts


def test_due_follows_the_kind_of_service() -> None:
    s = Schedule(interval_s=0.5, resync_s=30.0)
    s.start_cycle([], 0.0, done=True)
    s.note(_svc(1), [_rep("starting")], 0.0)  # busy: every pass
    s.note(_svc(2), [_rep("ready")], 0.0)  # serving: every 0.5 s
    s.note(_svc(3, replicas=0), [], 0.0)  # steady: never (until a change or the resync)
    assert s.due(0.1) == {1}
    assert s.due(0.6) == {1, 2}
    s.note(_svc(2), [_rep("ready")], 0.6)
    assert s.due(0.7) == {1}
    s.note(_svc(1), [_rep("ready")], 0.7)  # became ready: now at the probe cadence
    assert s.due(0.8) == set()
    s.retry(3, 0.8)  # its pass failed: again after interval_s, not every pass
    assert s.due(0.9) == set() and s.due(1.4) == {1, 2, 3}
    s.forget(3)
    assert 3 not in s.due(10.0)


def test_the_resync_takes_every_service_once_per_period_in_even_slices() -> None:
    s = Schedule(interval_s=0.5, resync_s=30.0)
    ids = list(range(3000))
    assert s.cycle_over(0.0)
    s.start_cycle(ids, 0.0)
    seen: list[int] = []
    t = 0.0
    while len(seen) < len(ids):
        assert not s.cycle_over(t)  # not before every service of this period was taken
        assert t < 31.0  # the last slice comes at most slice_s after the period's end
        t += 0.1
        got = s.due(t)
        assert len(got) <= 120  # 3000 per 30 s: about 100 per 1 s slice, never a burst
        seen += sorted(got)
    assert sorted(seen) == ids  # each exactly once
    assert s.cycle_over(t) and not s.due(t + 0.05)
    s.start_cycle(ids, 40.0, done=True)  # the first pass took them all: the next period starts after it
    assert not s.due(45.0) and not s.cycle_over(69.0) and s.cycle_over(70.0)
