"""The pure planner's in-place rollout (``max_surge=0``) when a new-revision replica already waits as pending: a
surge replica started under ``max_surge=1`` on a host with no room for it (a full GPU host; ``billing: prepaid``
with every instance in use) waits for the capacity its own old replica holds. Setting ``max_surge`` to 0 must
then drain an old replica to make that room; before, the pending one counted as "new in flight", so neither a
start nor a drain was ever planned and the rollout never ended."""

from __future__ import annotations

import pytest

from arkserve.domain.planning import Desired, Observed, Plan, ReplicaState, plan

R, S, F, P = ReplicaState.READY, ReplicaState.STARTING, ReplicaState.FAILED, ReplicaState.PENDING


def reps(*spec: tuple[str, str, ReplicaState]) -> list[Observed]:
    return [Observed(i, rev, st) for i, rev, st in spec]


CASES = [
    ("one replica: drain the old one the pending new one waits for",
     Desired(1, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", P)), Plan(drain=("a",))),
    ("two replicas: drain one old (the newest), keep the other serving",
     Desired(2, "v2", max_surge=0), reps(("a", "v1", R), ("b", "v1", R), ("n", "v2", P)), Plan(drain=("b",))),
    ("a ready new one and a pending one: drain the last old one",
     Desired(2, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", R), ("m", "v2", P)), Plan(drain=("a",))),
    ("with max_surge 1 the surge replica just waits (nothing drained before a new one is ready)",
     Desired(1, "v2"), reps(("a", "v1", R), ("n", "v2", P)), Plan()),
    ("a new one that is starting is in flight: wait for it",
     Desired(1, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", S)), Plan()),
    ("a new one that crash-loops does not take the old one down",
     Desired(1, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", F)), Plan()),
    ("no surplus (in place as usual): nothing more is drained",
     Desired(2, "v2", max_surge=0), reps(("a", "v1", R), ("n", "v2", P)), Plan()),
]


@pytest.mark.parametrize(("name", "desired", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plan_in_place_with_a_pending_new_replica(name: str, desired: Desired, observed: list[Observed],
                                                  expected: Plan) -> None:
    assert plan(desired, observed) == expected


@pytest.mark.parametrize("replicas", [1, 3])
def test_a_rollout_on_a_full_host_completes_once_max_surge_is_0(replicas: int) -> None:
    """A host with room for exactly ``replicas`` replicas: a pending replica is placed only when one of the slots
    is free; started ones become ready on the next pass. Stuck with max_surge 1, done with 0, never more than one
    replica short of serving."""
    state = [Observed(f"o{i}", "v1", R) for i in range(replicas)] + [Observed("n0", "v2", P)]
    assert plan(Desired(replicas, "v2"), state) == Plan()  # max_surge 1: stuck, as long as the host is full
    desired, counter = Desired(replicas, "v2", max_surge=0), 0
    for _ in range(6 * replicas + 4):
        p = plan(desired, state)
        state = [Observed(r.id, r.revision, R if r.state == S else r.state) for r in state if r.id not in p.drain]
        for _ in range(p.start):
            counter += 1
            state.append(Observed(f"n{counter}", "v2", P))
        placed = sum(1 for r in state if r.state != P)
        for i, r in enumerate(state):  # the pending ones take the free slots, in order
            if r.state == P and placed < replicas:
                state[i], placed = Observed(r.id, r.revision, S), placed + 1
        assert sum(1 for r in state if r.state == R) >= replicas - 1
    assert [(r.revision, r.state) for r in state] == [("v2", R)] * replicas
