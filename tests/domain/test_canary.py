"""The canary's pure parts: its replica count, the per-request draw (and its stickiness), and the planner keeping
both revisions' replicas while the stable revision's rules stay as they are (docs/canary.md). The gateway's
split pool: tests/gateway/test_canary_split.py."""

from __future__ import annotations

import random

import pytest

from arkserve.domain.canary import canary_replicas, pick_canary
from arkserve.domain.planning import Canary, Desired, Observed, Plan, ReplicaState, plan

R, S, F, D = ReplicaState.READY, ReplicaState.STARTING, ReplicaState.FAILED, ReplicaState.DRAINING


def reps(*spec: tuple[str, str, ReplicaState]) -> list[Observed]:
    return [Observed(i, rev, st) for i, rev, st in spec]


@pytest.mark.parametrize(("stable", "weight", "expected"), [
    (4, 10, 1), (10, 10, 1), (10, 25, 3), (2, 50, 1), (3, 50, 2), (0, 10, 1), (1, 99, 1), (20, 99, 20)])
def test_canary_replicas_is_its_share_rounded_up_and_at_least_one(stable: int, weight: int, expected: int) -> None:
    assert canary_replicas(stable, weight) == expected


C = Canary("c1", 1)
CASES = [
    ("start the canary beside a steady stable", Desired(2, "v1", canary=C), reps(("a", "v1", R), ("b", "v1", R)),
     Plan(start_canary=1)),
    ("steady with a canary", Desired(2, "v1", canary=C), reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", R)),
     Plan()),
    ("a starting canary is not started twice", Desired(2, "v1", canary=C),
     reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", S)), Plan()),
    ("a failed canary keeps its slot (restarted with backoff) and the stable serves on",
     Desired(2, "v1", canary=C), reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", F)), Plan()),
    ("canary replicas never count for the stable revision", Desired(2, "v1", canary=Canary("c1", 2)),
     reps(("a", "v1", R), ("c", "c1", R), ("d", "c1", R)), Plan(start=1)),
    ("the canary scales down apart", Desired(2, "v1", canary=C),
     reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", R), ("d", "c1", S)), Plan(drain=("d",))),
    ("a replaced canary: the previous canary's replicas are old ones, drained",
     Desired(2, "v1", canary=Canary("c2", 1)), reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", R)),
     Plan(drain=("c",), start_canary=1)),
    ("rollback (no canary any more): its replicas drain at once, the stable is whole",
     Desired(2, "v1"), reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", R)), Plan(drain=("c",))),
    ("promote: the canary's ready replica replaces one old at once, the next surges",
     Desired(2, "c1"), reps(("a", "v1", R), ("b", "v1", R), ("c", "c1", R)), Plan(start=1, drain=("b",))),
    ("delete drains the canary too", Desired(2, "v1", deleting=True, canary=C),
     reps(("a", "v1", R), ("c", "c1", R)), Plan(drain=("a", "c"))),
    ("draining canary replicas are not counted", Desired(1, "v1", canary=C), reps(("a", "v1", R), ("c", "c1", D)),
     Plan(start_canary=1)),
]


@pytest.mark.parametrize(("name", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_with_a_canary(name: str, desired: Desired, observed: list[Observed], expected: Plan) -> None:
    assert plan(desired, observed) == expected


def test_without_a_canary_the_plan_is_unchanged() -> None:
    """``canary=None`` and a canary of the desired revision itself plan exactly as before."""
    observed = reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", R))
    for d in (Desired(2, "v2"), Desired(2, "v2", canary=Canary("v2", 1))):
        assert plan(d, observed) == Plan(start=1, drain=("b",))


def test_a_promotion_converges_and_never_drops_below_desired_ready() -> None:
    state = reps(("a", "v1", R), ("b", "v1", R), ("c", "v1", R), ("k", "c1", R))
    desired = Desired(3, "c1")
    n = 0
    for _ in range(20):
        p = plan(desired, state)
        state = [Observed(r.id, r.revision, R if r.state == S else r.state) for r in state if r.id not in p.drain]
        for _ in range(p.start):
            n += 1
            state.append(Observed(f"n{n}", "c1", S))
        assert sum(1 for r in state if r.state == R) >= 3
    assert sorted(r.revision for r in state) == ["c1"] * 3


def test_the_draw_lands_near_its_weight_and_a_key_always_gets_the_same_answer() -> None:
    random.seed(7)
    hits = sum(pick_canary(10) for _ in range(20000))
    assert 1800 <= hits <= 2200
    assert all(pick_canary(10, b"k%d" % i) == pick_canary(10, b"k%d" % i) for i in range(200))
    keyed = sum(pick_canary(10, b"k%d" % i) for i in range(5000))
    assert 400 <= keyed <= 600
    assert all(pick_canary(30, b"k%d" % i) for i in range(500) if pick_canary(10, b"k%d" % i))  # raising keeps
