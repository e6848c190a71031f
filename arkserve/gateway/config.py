"""Every limit and timeout of the gateway, with sane defaults, in one frozen dataclass.

The lead maps :class:`arkserve.settings.GatewaySettings` onto this at the edge; tests build it
directly with tiny timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GatewayConfig:
    host: str = "127.0.0.1"
    addressing: str = "port"  # 'port' (listener per route.gateway_port) or 'host' (<svc>.<base_domain>)
    host_port: int = 8443  # the single listener of 'host' addressing
    base_domain: str = "localhost"
    admin_host: str = "127.0.0.1"
    admin_port: int = 0  # /metrics and /healthz; 0 = an ephemeral port (see Gateway.admin_port); -1 = off
    # client side
    header_timeout_s: float = 10.0  # first byte of a request to the end of its headers -> 408
    body_timeout_s: float = 60.0  # no body byte for this long while reading a request body -> 408
    idle_timeout_s: float = 75.0  # keep-alive connection with no request in progress -> closed
    tunnel_idle_s: float = 300.0  # a WebSocket/Upgrade tunnel with no byte either way -> closed
    max_header_bytes: int = 64 * 1024  # request line + headers -> 431
    max_body_bytes: int = 8 * 1024**3  # -> 413
    spool_memory_bytes: int = 1024 * 1024  # bodies hashed before forwarding: memory, then a temp file
    # upstream side
    connect_timeout_s: float = 3.0
    upstream_idle_s: float = 4.0  # pooled keep-alive connections closed after this idle time
    max_idle_per_upstream: int = 256
    connect_retries: int = 2  # extra attempts on another replica, only if nothing reached the first
    eject_s: float = 5.0  # passive ejection of a replica that refused or timed out on connect
    # asynchronous inference: the dispatcher's exchanges (verified X-Ark-Internal) wait this long for the replica
    # instead of the route's request_timeout_s (settings: asyncq.request_timeout_s)
    async_request_timeout_s: float = 3600.0
    # queueing when no replica is free
    queue_timeout_s: float = 30.0
    queue_max: int = 1024  # per service and worker; beyond it -> immediate 503
    retry_after_s: int = 1
    # autoscaling (gateway/load.py): how often this worker reports its load, and at most how often it wakes a service
    load_report_s: float = 1.0
    wake_every_s: float = 1.0
    # bookkeeping
    tick_s: float = 0.25  # timeout sweep granularity
    snapshot_poll_s: float = 0.1  # a version read; a load only when it moved (a watching source: 1 s, snapshot.py)
    skew_s: int = 900
    metrics_grace_s: float = 300.0  # /metrics keeps a gone replica's (or deleted service's) series this long
    verified_cache: int = 256  # recently verified signatures per worker (0 = off); see request.py
    shutdown_grace_s: float = 30.0  # draining at shutdown: in-flight exchanges get this long
    drain_idle_s: float = 1.0  # draining: an idle keep-alive connection may still send one request this long
    workers: int = 1  # processes; a per-replica max_concurrency is split between them
    trust_forwarded: bool = False  # append to a client's X-Forwarded-For instead of replacing it
