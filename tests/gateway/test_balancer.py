"""Table-driven tests of the pure balancer."""

from __future__ import annotations

import pytest

from arkserve.domain.routing import ServiceRoute, Upstream
from arkserve.gateway import balancer as bal


def pool(outstanding: list[int], limit: int = 0, ejected: tuple[int, ...] = ()) -> bal.ServicePool:
    states = []
    for i, n in enumerate(outstanding):
        st = bal.ReplicaState(Upstream(f"r{i}", "127.0.0.1", 1000 + i), limit)
        st.outstanding = n
        if i in ejected:
            st.ejected_until = 100.0
        states.append(st)
    return bal.ServicePool("svc", states)


@pytest.mark.parametrize(("outstanding", "limit", "ejected", "expected"), [
    ([], 0, (), None),
    ([0], 0, (), "r0"),
    ([5], 5, (), None),  # saturated
    ([4], 5, (), "r0"),
    ([3, 1, 2], 0, (), "r1"),  # least outstanding
    ([0, 0, 0], 0, (0, 1), "r2"),  # ejected skipped
    ([0], 0, (0,), None),
    ([2, 2], 2, (), None),  # all saturated
    ([2, 1], 2, (), "r1"),
    ([9, 1, 0], 0, (2,), "r1"),
])
def test_pick(outstanding: list[int], limit: int, ejected: tuple[int, ...], expected: str | None) -> None:
    p = pool(outstanding, limit, ejected)
    got = p.pick(now=50.0)
    assert (got.replica if got else None) == expected


def test_ejection_expires() -> None:
    p = pool([0], ejected=(0,))
    assert p.pick(now=99.9) is None
    assert p.pick(now=100.0) is not None


def test_ties_rotate() -> None:
    p = pool([0, 0, 0])
    seen = [p.pick(0.0).replica for _ in range(6)]  # type: ignore[union-attr]
    assert set(seen) == {"r0", "r1", "r2"}


def test_acquire_release_and_p2c_large_pool() -> None:
    p = pool([0] * 20)
    got = [p.acquire(0.0) for _ in range(200)]
    assert all(g is not None for g in got)
    loads = sorted(st.outstanding for st in p.replicas)
    assert loads[-1] - loads[0] <= 6  # power of two choices keeps them close
    for g in got:
        bal.release(g)  # type: ignore[arg-type]
    assert all(st.outstanding == 0 for st in p.replicas)


@pytest.mark.parametrize(("cap", "workers", "expected"), [(0, 4, 0), (1, 4, 1), (8, 2, 4), (5, 2, 3), (3, 1, 3)])
def test_per_worker_limit(cap: int, workers: int, expected: int) -> None:
    assert bal.per_worker_limit(cap, workers) == expected


def test_update_keeps_state_of_surviving_replicas() -> None:
    b = bal.Balancer()
    a, c = Upstream("a", "127.0.0.1", 1), Upstream("c", "127.0.0.1", 3)
    b.update({"s": ServiceRoute("s", 1, True, (a, c), max_concurrency=2)})
    st = b.pools["s"].acquire(0.0)
    assert st is not None
    b.update({"s": ServiceRoute("s", 1, True, (a,), max_concurrency=2)})
    if st.replica == "a":
        assert b.pools["s"].replicas[0] is st and st.outstanding == 1
    assert [r.replica for r in b.pools["s"].replicas] == ["a"]
    b.update({})
    assert b.pool("s") is None
