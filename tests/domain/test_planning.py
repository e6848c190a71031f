"""Table-driven tests of the pure planner: scaling, rolling updates, stalls, deletion."""

from __future__ import annotations

import pytest

from arkserve.domain.planning import Desired, Observed, Plan, ReplicaState, plan

R, S, F, P, D = (ReplicaState.READY, ReplicaState.STARTING, ReplicaState.FAILED, ReplicaState.PENDING,
                 ReplicaState.DRAINING)


def reps(*spec: tuple[str, str, ReplicaState]) -> list[Observed]:
    return [Observed(i, rev, st) for i, rev, st in spec]


CASES = [
    ("scale from zero", Desired(3, "v1"), [], Plan(start=3)),
    ("steady", Desired(2, "v1"), reps(("a", "v1", R), ("b", "v1", R)), Plan()),
    ("scale up counts starting ones", Desired(3, "v1"), reps(("a", "v1", R), ("b", "v1", S)), Plan(start=1)),
    ("scale down drains non-ready first, then newest",
     Desired(1, "v1"), reps(("a", "v1", R), ("b", "v1", S), ("c", "v1", R)), Plan(drain=("b", "c"))),
    ("scale to zero", Desired(0, "v1"), reps(("a", "v1", R), ("b", "v1", R)), Plan(drain=("b", "a"))),
    ("draining replicas are not counted", Desired(2, "v1"), reps(("a", "v1", R), ("b", "v1", D)), Plan(start=1)),
    ("failed replicas keep their slot (restarted with backoff)",
     Desired(2, "v1"), reps(("a", "v1", R), ("b", "v1", F)), Plan()),
    ("rollout: surge one new", Desired(2, "v2"), reps(("a", "v1", R), ("b", "v1", R)), Plan(start=1)),
    ("rollout: wait while the new one starts",
     Desired(2, "v2"), reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", S)), Plan()),
    ("rollout: new ready -> drain one old and surge the next",
     Desired(2, "v2"), reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", R)), Plan(start=1, drain=("b",))),
    ("rollout: stalled new version keeps every old replica",
     Desired(2, "v2"), reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", F)), Plan()),
    ("rollout: done", Desired(2, "v2"), reps(("a", "v1", R), ("n", "v2", R), ("m", "v2", R)), Plan(drain=("a",))),
    ("rollout: broken old replicas go first",
     Desired(2, "v2"), reps(("a", "v1", R), ("b", "v1", F), ("n", "v2", R)), Plan(start=1, drain=("b",))),
    ("in place: free a slot first", Desired(2, "v2", max_surge=0), reps(("a", "v1", R), ("b", "v1", R)),
     Plan(drain=("b",))),
    ("in place: then start into it", Desired(2, "v2", max_surge=0), reps(("a", "v1", R)), Plan(start=1)),
    ("in place: wait for the new one", Desired(2, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", S)), Plan()),
    ("delete drains everything", Desired(2, "v1", deleting=True), reps(("a", "v1", R), ("b", "v2", P)),
     Plan(drain=("a", "b"))),
    ("rollout while scaling down", Desired(1, "v2"), reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", R)),
     Plan(drain=("b", "a"))),
]


@pytest.mark.parametrize(("name", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan(name: str, desired: Desired, observed: list[Observed], expected: Plan) -> None:
    assert plan(desired, observed) == expected


def test_a_rollout_converges_and_never_drops_below_desired_ready() -> None:
    """Simulate: each started replica becomes ready on the next pass; count serving replicas throughout."""
    state = reps(("a", "v1", R), ("b", "v1", R), ("c", "v1", R))
    desired = Desired(3, "v2")
    counter = 0
    for _ in range(20):
        p = plan(desired, state)
        state = [Observed(r.id, r.revision, R if r.state == S else r.state) for r in state if r.id not in p.drain]
        for _ in range(p.start):
            counter += 1
            state.append(Observed(f"n{counter}", "v2", S))
        assert sum(1 for r in state if r.state == R) >= 3 - 0  # ready never dips under desired
        if not p.start and not p.drain and all(r.revision == "v2" and r.state == R for r in state):
            break
    assert [r.revision for r in state] == ["v2"] * 3
