"""Timings of the reconciler, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReconcilerConfig:
    interval_s: float = 0.5  # a service with ready replicas is probed (and checked against the runtime) this often
    wake_poll_s: float = 0.1  # how often to read the change feed; services starting, draining or failing act this often
    store_wake: bool = True  # a commit ends a quiet pause at once (reconciler/wake.py); False: the poll only
    resync_s: float = 30.0  # every service is reconciled at least this often, changed or not (spread over the period)
    drain_min_s: float = 0.2  # out of routing -> stop: at least this long, and until every live gateway worker
    drain_timeout_s: float = 10.0  # acknowledged the snapshot without the replica and none reports a request on it
    # (at most this long plus the longest request it may serve: the service's request_timeout_s, or the one below
    # while the service has asynchronous requests running; domain/draining.py)
    drain_report_s: float = 2.0  # after the gateways dropped a replica, their load reports (every second) may take
    # this long to name a request still on it
    async_request_timeout_s: float = 3600.0  # asyncq.request_timeout_s: the dispatcher's requests run this long
    gateway_fresh_s: float = 10.0  # a gateway worker silent for longer is presumed gone
    stop_grace_s: float = 10.0  # SIGTERM -> SIGKILL
    health_timeout_s: float = 1.0
    port_check_after_s: float = 3.0  # a starting replica nobody listens for: look at what its processes listen on
    failure_threshold: int = 3  # consecutive failed probes of a ready replica before it is replaced
    backoff_base_s: float = 1.0  # restart delay: 0 for the first restart, then base * 2^(n-1)
    backoff_max_s: float = 30.0
    crashloop_restarts: int = 3  # restarts without a stable run after which the status says "failed"
    stable_after_s: float = 60.0  # ready this long: the restart counter's backoff starts afresh
    workers: int = 8  # services reconciled in parallel
    stop_workers: int = 64  # replica stops (each waits out its own grace period) run this many at a time
    retention_s: float = 7 * 86400  # events, request log, logs of replicas that no longer exist
    prune_every_s: float = 3600
    model_cache_bytes: int = 50 * 1024**3  # node-local model cache: LRU eviction of unmounted versions past it
    cpu_overcommit: float = 0.0  # placement hands out this many times the host's CPUs (0: no limit; capacity)
    memory_overcommit: float = 0.0  # ... and this many times its memory (GPUs are never overcommitted)
    inventory_every_s: float = 60.0  # the host's inventory (CPUs, memory, GPUs) is recorded again this often

    def backoff(self, restarts: int) -> float:
        if restarts <= 1:
            return 0.0
        return float(min(self.backoff_max_s, self.backoff_base_s * 2 ** (restarts - 2)))
