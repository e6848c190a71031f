"""Per-worker state shared by every connection: the applied snapshot and its lookup tables, the
balancer, the upstream pool, the wait queues, metrics, the request log, and the periodic sweep.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from arkserve.domain.routing import EMPTY_SNAPSHOT, RoutingSnapshot, ServiceRoute
from arkserve.gateway.balancer import Balancer, ReplicaState
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.http import METHOD_NAMES, HttpError, service_failing
from arkserve.gateway.load import Loads, LoadSink, changes, note_leaving, worker_loads
from arkserve.gateway.metrics import Metrics
from arkserve.gateway.phase import ACTIVE, FINISHED, QUEUED
from arkserve.gateway.requestlog import RecordSink
from arkserve.gateway.spool import Spool
from arkserve.gateway.upstream import UpstreamPool

if TYPE_CHECKING:
    from arkserve.gateway.asyncintake import AsyncQueue
    from arkserve.gateway.auth import Decision
    from arkserve.gateway.exchange import Exchange
    from arkserve.gateway.proxy import ClientConnection




class Core:
    def __init__(self, config: GatewayConfig, sink: RecordSink | None, load: LoadSink | None = None,
                 async_queue: AsyncQueue | None = None) -> None:
        self.config = config
        self.async_queue = async_queue  # asynchronous inference (asyncintake.py); None: off
        self.load = load  # the autoscaler's view of this worker (gateway/load.py); None: nobody asks
        self._reported: Loads = {}
        self._leaving: set[ReplicaState] = set()  # replicas out of routing with requests still on them (load.py)
        self._report_at = 0.0
        self._woken: dict[str, float] = {}  # service -> when this worker last asked it to wake
        self.loop = asyncio.get_running_loop()
        self.sink = sink
        self.balancer = Balancer(config.workers)
        self.upstreams = UpstreamPool(config.max_idle_per_upstream, config.upstream_idle_s)
        self.metrics = Metrics()
        self.snapshot: RoutingSnapshot = EMPTY_SNAPSHOT
        self.secrets: dict[str, bytes] = {}
        # recently verified signatures (see request.py): inputs -> (decision, signed date)
        self.verified: dict[bytes, tuple[Decision, float]] = {}
        self.services: dict[str, ServiceRoute] = {}
        self.port_routes: dict[int, ServiceRoute] = {}
        self.host_mode = config.addressing == "host"
        self.host_suffix = b"." + config.base_domain.lower().encode("ascii")
        self.connections: set[ClientConnection] = set()
        self.queues: dict[str, deque[Exchange]] = {}
        self.waiting = 0
        self.closing = False
        self.clock = self.loop.time()
        self.wall = time.time()  # refreshed every tick; good enough for the ±15 min signature window
        self._task: asyncio.Task[None] | None = None
        self._prune_at = self.clock + config.metrics_grace_s / 4

    # ------------------------------------------------------------------------------ snapshot
    def apply(self, snap: RoutingSnapshot) -> bool:
        """Swap in a new snapshot; in-flight exchanges keep the route and replica they hold. A snapshot that
        says what changed since the one served now is applied in O(changed). True when the set of gateway
        ports may have changed (port addressing opens or closes listeners then)."""
        self.verified.clear()  # keys, their state or the routes may have changed
        if snap.keys_changed or snap.changed is None or snap.base != self.snapshot.version:
            self.secrets = {ak: k.secret for ak, k in snap.keys.items()}
        pools = self.balancer.pools  # the pools before (a full update replaces the dict, a partial one edits it)
        if snap.changed is None or snap.base != self.snapshot.version:
            before = pools
            self.balancer.update(snap.services)
            self.services = dict(snap.services)
            self.port_routes = {r.gateway_port: r for r in snap.services.values() if r.gateway_port is not None}
            names: Iterable[str] = self.queues
            ports_moved = True
        else:
            before = {n: pools[n] for n in snap.changed if n in pools} if self.load is not None else {}
            names, ports_moved = snap.changed, self._apply_changed(snap)
        if self.load is not None:
            note_leaving(before, self.balancer.pools, self._leaving)
        self.snapshot = snap
        for name in names:  # waiting for a service that has just failed: answer them now
            q = self.queues.get(name)
            if not q:
                continue
            route = self.services.get(name)
            while q and route is not None and route.failed_without_replicas:
                ex = q.popleft()
                self.waiting -= 1
                ex.stage = ACTIVE
                ex.fail(service_failing(name, route.failing, self.config.retry_after_s))
        self._recheck_tunnels(snap)
        self.pump_all()
        return ports_moved

    def _apply_changed(self, snap: RoutingSnapshot) -> bool:
        """Only the services ``snap`` names as changed; True when one's gateway port came, went or moved."""
        assert snap.changed is not None
        self.balancer.update_some(snap.services, snap.changed)
        moved = False
        for name in snap.changed:
            old, new = self.services.pop(name, None), snap.services.get(name)
            if old is not None and old.gateway_port is not None and self.port_routes.get(old.gateway_port) is old:
                del self.port_routes[old.gateway_port]
            if new is not None:
                self.services[name] = new
                if new.gateway_port is not None:
                    self.port_routes[new.gateway_port] = new
            moved = moved or (old.gateway_port if old else None) != (new.gateway_port if new else None)
        return moved

    def _recheck_tunnels(self, snap: RoutingSnapshot) -> None:
        """Close every open tunnel (WebSocket) whose handshake this snapshot would refuse: its service is
        gone, or has auth on and the key is unknown, disabled, deleted or no longer allowed (a public
        service that turned auth on counts: the handshake carried no key)."""
        for conn in list(self.connections):
            ex = conn.open_tunnel()
            if ex is None or ex.route is None:
                continue
            route = snap.services.get(ex.route.name)
            if route is not None and route.auth:
                key = snap.keys.get(ex.access_key) if ex.access_key else None
                allowed = key is not None and snap.may_call(key, route)
            else:
                allowed = route is not None
            if not allowed:
                ex.tunnel.close()  # type: ignore[union-attr]

    # ------------------------------------------------------------------------------ queueing
    def enqueue(self, ex: Exchange) -> None:
        name = ex.route.name  # type: ignore[union-attr]
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = deque()
        if len(q) >= self.config.queue_max:
            ex.fail(HttpError(503, "NoReplicaAvailable", "no replica is free and the wait queue is full",
                              retry_after=self.config.retry_after_s))
            return
        cold_s = ex.route.cold_start_timeout_s if not ex.route.upstreams else 0.0  # type: ignore[union-attr]
        cold = cold_s > 0  # an autoscaled service at 0 replicas: held up to its cold-start timeout
        if ex.stage != QUEUED:
            ex.stage = QUEUED
            ex.deadline = self.clock + (cold_s if cold else self.config.queue_timeout_s)  # its own, even if shorter
        q.append(ex)
        self.waiting += 1
        if cold and self.load is not None and self.clock - self._woken.get(name, -1e9) >= self.config.wake_every_s:
            self._woken[name] = self.clock
            self.load.wake(name, len(q))

    def dequeue(self, ex: Exchange) -> None:
        q = self.queues.get(ex.route.name)  # type: ignore[union-attr]
        if q is not None and ex in q:
            q.remove(ex)
            self.waiting -= 1
        ex.stage = ACTIVE

    def pump(self, name: str) -> None:
        q = self.queues.get(name)
        pool = self.balancer.pools.get(name)
        while q and pool is not None and pool.pick(self.clock) is not None:
            ex = q.popleft()
            self.waiting -= 1
            if ex.resp != FINISHED:
                deadline = ex.deadline
                ex.dispatch()
                if ex.stage == QUEUED:  # put back by dispatch: keep the original deadline
                    ex.deadline = deadline

    def pump_all(self) -> None:
        if self.waiting:
            for name in list(self.queues):
                self.pump(name)

    # ------------------------------------------------------------------------------ bookkeeping
    def new_spool(self) -> Spool:
        return Spool(self.config.spool_memory_bytes)

    def record(self, ex: Exchange, status: int, replica: str, revision: str = "") -> None:
        latency = time.perf_counter() - ex.t0
        service = ex.route.name if ex.route is not None else ""
        self.metrics.observe(service, replica, status, latency)
        if self.sink is not None:
            method = METHOD_NAMES.get(ex.method) or ex.method.decode("ascii", "replace")
            try:
                url = ex.url.decode()
            except UnicodeDecodeError:
                url = ex.url.decode("utf-8", "replace")
            ms = int(latency * 1e6 + 0.5) / 1000  # to the µs, as round(_, 3) without its float-to-text round trip
            self.sink.submit((ex.wall, service, replica, method, url, status, ms, ex.bytes_in, ex.bytes_out,
                              ex.access_key, ex.conn.client, ex.rid.decode(), revision))

    def tick(self) -> None:
        now = self.clock = self.upstreams.clock = self.loop.time()
        self.wall = time.time()
        for conn in list(self.connections):
            conn.check(now)
        self.upstreams.sweep(now)
        self.pump_all()
        self.metrics.inflight = sum(len(c.pipeline) for c in self.connections)
        self.metrics.queue_depth = {n: len(q) for n, q in self.queues.items()}
        if self.sink is not None:  # a BatchingSink counts what it lost; other sinks lose nothing they know of
            lost = {"backlog": getattr(self.sink, "dropped", 0), "delivery": getattr(self.sink, "failed_rows", 0)}
            self.metrics.request_log_lost = {k: v for k, v in lost.items() if v}
        if now >= self._prune_at:
            self._prune_at = now + self.config.metrics_grace_s / 4
            self.metrics.prune(self._live_replicas, now, self.config.metrics_grace_s)
        if self.load is not None and now >= self._report_at:
            self._report_at = now + self.config.load_report_s
            loads = worker_loads(self.balancer.pools, self.queues, self._leaving)
            if loads or self._reported:
                self.load.report(changes(self._reported, loads))
            self._reported = loads

    def _live_replicas(self, service: str) -> frozenset[str] | None:
        route = self.services.get(service)
        return None if route is None else frozenset(u.replica for u in route.upstreams)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self.tick()

    def start(self) -> None:
        self._task = self.loop.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.upstreams.close_all()
