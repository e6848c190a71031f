"""What a gateway worker reports per replica (gateway/load.py): the replicas with requests since the last report,
and those that left routing with requests still on them until the last one ends (the reconciler stops a draining
replica only then, docs/autoscaling.md). Real balancer state, as the core holds it."""

from __future__ import annotations

from arkserve.domain.routing import Upstream
from arkserve.gateway.balancer import ReplicaState, ServicePool, release
from arkserve.gateway.load import changes, note_leaving, service_loads, worker_loads


def _pool(*ids: str) -> ServicePool:
    return ServicePool("web", [ReplicaState(Upstream(r, "127.0.0.1", 9000 + i), 0) for i, r in enumerate(ids)])


def test_busy_replicas_are_reported_under_their_own_key_beside_the_service() -> None:
    pool = _pool("ra", "rb")
    a = pool.acquire(0.0)
    assert a is not None and a.replica in ("ra", "rb")
    leaving: set[ReplicaState] = set()
    assert worker_loads({"web": pool}, {}, leaving) == {"web": (1, 0), "@" + a.replica: (1, 0)}
    release(a)
    assert worker_loads({"web": pool}, {}, leaving) == {"web": (1, 0), "@" + a.replica: (1, 0)}  # its peak
    assert worker_loads({"web": pool}, {}, leaving) == {}
    b = pool.acquire(0.0)
    assert b is not None
    assert service_loads({"web": pool}, {}) == {"web": (1, 0)}  # the autoscaler's view alone: no replica keys


def test_a_replica_out_of_routing_is_reported_until_its_last_request_ends() -> None:
    old = _pool("ra", "rb")
    held = [old.acquire(0.0), old.acquire(0.0)]  # one on each
    assert all(held)
    gone = next(st for st in held if st is not None and st.replica == "rb")
    new = ServicePool("web", [st for st in old.replicas if st.replica == "ra"])  # rb left routing
    leaving: set[ReplicaState] = set()
    note_leaving({"web": old}, {"web": new}, leaving)
    assert leaving == {gone}
    first = worker_loads({"web": new}, {}, leaving)
    assert first == {"web": (1, 0), "@ra": (1, 0), "@rb": (1, 0)}  # rb's request does not count for the service
    release(gone)
    second = worker_loads({"web": new}, {}, leaving)
    assert "@rb" not in second and not leaving
    assert changes(first, second)["@rb"] == (0, 0)  # the zero that lets the reconciler stop it


def test_a_deleted_service_and_an_idle_replica_that_left() -> None:
    old = _pool("ra", "rb")
    st = old.acquire(0.0)
    assert st is not None
    leaving: set[ReplicaState] = set()
    note_leaving({"web": old}, {}, leaving)  # the service is gone from the snapshot
    assert leaving == {st}  # the idle one is not kept
    assert worker_loads({}, {}, leaving) == {"@" + st.replica: (1, 0)}


def test_open_tunnels_do_not_hold_a_replica_that_left() -> None:
    """A WebSocket lives as long as its client wants: it ends when its replica stops (the client reconnects to
    another), so only the requests beside it keep a draining replica."""
    old = _pool("ra")
    ws, req = old.acquire(0.0), old.acquire(0.0)
    assert ws is not None and req is ws
    ws.tunnels += 1  # what relay.resp_upgrade does for a 101
    leaving: set[ReplicaState] = set()
    note_leaving({"web": old}, {}, leaving)
    assert worker_loads({}, {}, leaving) == {"@ra": (1, 0)}  # the request, not the tunnel
    release(req)
    assert worker_loads({}, {}, leaving) == {} and not leaving
    only_ws: set[ReplicaState] = set()
    note_leaving({"web": old}, {}, only_ws)
    assert not only_ws
