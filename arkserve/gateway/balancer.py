"""Pure load balancing: least outstanding requests, per-replica concurrency caps, passive ejection.

No I/O and no clock of its own: callers pass ``now``. A :class:`Balancer` holds one
:class:`ServicePool` per service; :meth:`Balancer.update` rebuilds them from a snapshot while
keeping each surviving replica's :class:`ReplicaState` (so in-flight counts carry across swaps).
Small pools are scanned (least outstanding, round-robin among ties); large ones use the power of
two random choices. A service with a canary gets a :class:`SplitPool`: one draw per request picks the
revision (``domain/canary.py``), then the usual rule picks among that revision's replicas; a plain
service's pool is untouched by any of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from arkserve.domain.canary import CANARY_KEY_HEADER, pick_canary
from arkserve.domain.routing import ServiceRoute, Upstream

_SCAN_MAX = 8


class ReplicaState:
    """Per-replica bookkeeping of one worker."""

    __slots__ = ("address", "ejected_until", "failures", "limit", "outstanding", "peak", "replica", "revision",
                 "tunnels", "upstream")

    def __init__(self, upstream: Upstream, limit: int) -> None:
        self.upstream = upstream
        self.replica = upstream.replica
        self.revision = upstream.revision
        self.address = (upstream.host, upstream.port)
        self.limit = limit  # 0 = unlimited
        self.outstanding = 0
        self.peak = 0  # the most outstanding at once since the last load report (load.service_loads resets it)
        self.tunnels = 0  # of the outstanding, the open tunnels (WebSockets): they do not hold a draining replica
        self.ejected_until = 0.0
        self.failures = 0

    def available(self, now: float) -> bool:
        return self.ejected_until <= now and (self.limit <= 0 or self.outstanding < self.limit)

    def __repr__(self) -> str:
        return f"ReplicaState({self.replica!r}, outstanding={self.outstanding}, limit={self.limit})"


class ServicePool:
    """The replicas of one service and the pick rule."""

    __slots__ = ("_rr", "name", "replicas")

    def __init__(self, name: str, replicas: list[ReplicaState]) -> None:
        self.name = name
        self.replicas = replicas
        self._rr = 0

    def pick(self, now: float) -> ReplicaState | None:
        """The replica to use now (not yet acquired), or ``None`` when none is available."""
        reps = self.replicas
        n = len(reps)
        if n == 1:
            r = reps[0]
            return r if r.available(now) else None
        if n == 0:
            return None
        if n > _SCAN_MAX:
            a, b = random.sample(reps, 2)
            ok_a, ok_b = a.available(now), b.available(now)
            if ok_a and ok_b:
                return a if a.outstanding <= b.outstanding else b
            if ok_a:
                return a
            if ok_b:
                return b
        start = self._rr = (self._rr + 1) % n
        best: ReplicaState | None = None
        for i in range(n):
            r = reps[(start + i) % n]
            if r.available(now) and (best is None or r.outstanding < best.outstanding):
                best = r
                if r.outstanding == 0:
                    break
        return best

    def acquire(self, now: float, head: list[bytes] | None = None) -> ReplicaState | None:
        """Pick and count a replica; ``head`` (the request's head pieces) matters to a :class:`SplitPool` only."""
        r = self.pick(now)
        if r is not None:
            r.outstanding += 1
            if r.outstanding > r.peak:
                r.peak = r.outstanding
        return r


def canary_key(head: list[bytes]) -> bytes | None:
    """The value of the request's ``X-Ark-Canary-Key`` header in its head pieces (name, ": ", value, CRLF)."""
    for i in range(4, len(head) - 2):
        part = head[i]
        if len(part) == len(CANARY_KEY_HEADER) and part.lower() == CANARY_KEY_HEADER and head[i + 1] == b": ":
            return head[i + 2]
    return None


class SplitPool(ServicePool):
    """A service with a canary: ``weight`` percent of requests go to the canary revision's replicas, sticky by the
    ``X-Ark-Canary-Key`` header when the request has one. When the drawn revision has no available replica the
    other one serves (a split never fails a request that one replica could take)."""

    __slots__ = ("canary", "stable", "weight")

    def __init__(self, name: str, replicas: list[ReplicaState], canary_revision: str, weight: int) -> None:
        super().__init__(name, replicas)
        self.weight = weight
        self.stable = ServicePool(name, [r for r in replicas if r.revision != canary_revision])
        self.canary = ServicePool(name, [r for r in replicas if r.revision == canary_revision])

    def pick(self, now: float, key: bytes | None = None) -> ReplicaState | None:
        first, second = (self.canary, self.stable) if pick_canary(self.weight, key) else (self.stable, self.canary)
        return first.pick(now) or second.pick(now)

    def acquire(self, now: float, head: list[bytes] | None = None) -> ReplicaState | None:
        r = self.pick(now, canary_key(head) if head else None)
        if r is not None:
            r.outstanding += 1
            if r.outstanding > r.peak:
                r.peak = r.outstanding
        return r


def release(state: ReplicaState) -> None:
    state.outstanding -= 1


def eject(state: ReplicaState, now: float, period_s: float) -> None:
    """Passively eject a replica that refused a connection or timed out connecting."""
    state.failures += 1
    state.ejected_until = now + period_s


def succeed(state: ReplicaState) -> None:
    state.failures = 0


def per_worker_limit(max_concurrency: int, workers: int) -> int:
    """Split a per-replica concurrency cap between worker processes (rounding up, never below 1)."""
    if max_concurrency <= 0:
        return 0
    return max(1, -(-max_concurrency // max(1, workers)))


class Balancer:
    """All service pools of a worker, rebuilt from each routing snapshot."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.pools: dict[str, ServicePool] = {}
        self._states: dict[tuple[str, str, int], ReplicaState] = {}

    def update(self, services: Mapping[str, ServiceRoute]) -> None:
        states: dict[tuple[str, str, int], ReplicaState] = {}
        pools: dict[str, ServicePool] = {}
        for name, route in services.items():
            pools[name] = self._pool(route, states, self._states)
        self._states = states
        self.pools = pools

    def update_some(self, services: Mapping[str, ServiceRoute], names: Iterable[str]) -> None:
        """Rebuild only the pools of ``names`` (the services a snapshot changed; one missing from
        ``services`` is gone); every other pool and replica state stays as it is."""
        for name in names:
            old = self.pools.get(name)
            before: dict[tuple[str, str, int], ReplicaState] = {}
            if old is not None:
                for st in old.replicas:
                    key = (st.replica, *st.address)
                    before[key] = self._states.pop(key, st)
            route = services.get(name)
            if route is not None:
                self.pools[name] = self._pool(route, self._states, before)
            else:
                self.pools.pop(name, None)

    def _pool(self, route: ServiceRoute, states: dict[tuple[str, str, int], ReplicaState],
              before: Mapping[tuple[str, str, int], ReplicaState]) -> ServicePool:
        """The pool of ``route``, reusing each surviving replica's state (in-flight counts carry over);
        its states are added to ``states``."""
        limit = per_worker_limit(route.max_concurrency, self.workers)
        reps: list[ReplicaState] = []
        for up in route.upstreams:
            key = (up.replica, up.host, up.port)
            st = states.get(key) or before.get(key)
            if st is None:
                st = ReplicaState(up, limit)
            st.limit = limit
            states[key] = st
            reps.append(st)
        old = self.pools.get(route.name)
        pool = SplitPool(route.name, reps, route.canary, route.canary_weight) if route.canary else \
            ServicePool(route.name, reps)
        if old is not None:
            pool._rr = old._rr
        return pool

    def pool(self, name: str) -> ServicePool | None:
        return self.pools.get(name)

    def all_states(self) -> Iterable[ReplicaState]:
        return self._states.values()
