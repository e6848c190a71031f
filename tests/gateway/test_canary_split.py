"""The gateway's split pool for a service with a canary (pure: no sockets): the weight per request, the fallback
when one revision has no free replica, the sticky key read from the request head (docs/canary.md)."""

from __future__ import annotations

import random

from arkserve.domain.routing import ServiceRoute, Upstream
from arkserve.gateway.balancer import Balancer, SplitPool, canary_key


def _route(weight: int) -> ServiceRoute:
    ups = (Upstream("s1", "127.0.0.1", 1, "v1"), Upstream("s2", "127.0.0.1", 2, "v1"),
           Upstream("c1", "127.0.0.1", 3, "c1"))
    return ServiceRoute("svc", 1, False, ups, canary="c1" if weight else "", canary_weight=weight)


def test_a_split_pool_sends_its_weight_to_the_canary_and_falls_back_when_one_side_is_full() -> None:
    b = Balancer()
    b.update({"svc": _route(20)})
    pool = b.pool("svc")
    assert isinstance(pool, SplitPool)
    random.seed(3)
    got = [pool.acquire(0.0) for _ in range(5000)]
    for st in got:
        assert st is not None
        st.outstanding -= 1
    share = sum(1 for st in got if st is not None and st.revision == "c1") / len(got)
    assert 0.17 <= share <= 0.23
    for st in pool.canary.replicas:  # the canary is at its cap: the stable serves every request
        st.limit, st.outstanding = 1, 1
    for _ in range(50):
        st = pool.acquire(0.0)
        assert st is not None and st.revision == "v1"
    b.update({"svc": _route(0)})
    assert type(b.pool("svc")) is not SplitPool  # no canary: the plain pool, untouched


def test_the_canary_key_is_read_from_the_request_head() -> None:
    head = [b"GET", b" ", b"/", b" HTTP/1.1\r\n", b"Host", b": ", b"x", b"\r\n", b"X-Ark-Canary-Key", b": ",
            b"alice", b"\r\n"]
    assert canary_key(head) == b"alice"
    assert canary_key(head[:8]) is None
