"""The gateway and reconciler commands: each part wired to the store, runnable alone or under ``up``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import click

from arkserve.cli.server import _logging, _settings, store_options
from arkserve.errors import ArkserveError
from arkserve.settings import Settings


def _master(s: Settings) -> Any:
    from arkserve.auth.vault import load_master_key

    return load_master_key(s.data_dir, os.environ.get("ARKSERVE_MASTER_KEY"), create=False)


def gateway_ssl(s: Settings) -> ssl.SSLContext | None:
    from arkserve.tls import ensure_local_ca, server_context

    g = s.gateway
    if not g.tls:
        return None
    if g.tls_cert:
        return server_context(Path(g.tls_cert), Path(g.tls_key or g.tls_cert))
    files = ensure_local_ca(s.data_dir, g.base_domain)
    return server_context(files.cert, files.key)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@click.command("gateway", help="Run the gateway (data plane) alone, against --database-url.")
@store_options
@click.option("--workers", type=int, default=None, help="Worker processes sharing the ports (default: cores, ≤4).")
@click.option("--plain-http", is_flag=True, default=None, help="No TLS (behind another TLS terminator).")
@click.option("--tls-cert", default=None, help="PEM certificate chain (default: the local CA's).")
@click.option("--tls-key", default=None, help="PEM private key for --tls-cert.")
def gateway(data_dir: str | None, database_url: str | None, workers: int | None, plain_http: bool | None,
            tls_cert: str | None, tls_key: str | None) -> None:
    from arkserve.gateway.config import GatewayConfig
    from arkserve.gateway.load import BackgroundLoad, Loads
    from arkserve.gateway.requestlog import PipedSink
    from arkserve.gateway.server import run_gateway
    from arkserve.store import load as load_store
    from arkserve.store import request_writer
    from arkserve.store.db import open_store
    from arkserve.store.routing import StoreSnapshotSource

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url, "gateway.workers": workers,
                                        "gateway.tls": False if plain_http else None,
                                        "gateway.tls_cert": tls_cert, "gateway.tls_key": tls_key})
    _logging(s.log_level)
    g = s.gateway
    try:
        master = _master(s)
        ctx = gateway_ssl(s)
    except (ArkserveError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    config = GatewayConfig(
        host=g.host, addressing=g.addressing, host_port=g.host_port, base_domain=g.base_domain,
        admin_port=g.admin_port, header_timeout_s=g.header_timeout_s, body_timeout_s=g.body_timeout_s,
        idle_timeout_s=g.idle_timeout_s, tunnel_idle_s=g.tunnel_idle_s, connect_timeout_s=g.connect_timeout_s,
        max_header_bytes=g.max_header_bytes,
        max_body_bytes=g.max_body_bytes, queue_timeout_s=g.queue_timeout_s, queue_max=g.queue_max,
        skew_s=s.api.clock_skew_s, shutdown_grace_s=g.shutdown_grace_s,
        async_request_timeout_s=s.asyncq.request_timeout_s)

    def source() -> StoreSnapshotSource:  # called in each worker process, after the fork
        return StoreSnapshotSource(open_store(s.database_url, migrate_schema=False), master)

    def sink() -> PipedSink:  # in each worker: its request log goes to the store through a writer process
        argv, env = request_writer.launch(s.database_url)
        return PipedSink(argv, env=env)

    def load() -> BackgroundLoad:  # the autoscaler's load reports and wakes (docs/autoscaling.md)
        store = open_store(s.database_url, migrate_schema=False)
        worker = f"{socket.gethostname()}:{os.getpid()}"

        def report(loads: Loads) -> None:
            with store.begin() as conn:
                load_store.report(conn, worker, loads)

        def wake(service: str, queued: int) -> None:
            with store.begin() as conn:
                load_store.wake(conn, worker, service, queued)

        return BackgroundLoad(report, wake)

    def async_queue() -> Any:  # asynchronous inference (docs/async.md): the store-backed queue, per worker
        from arkserve.asyncq.intake import StoreQueue

        return StoreQueue(open_store(s.database_url, migrate_schema=False), s.data_dir, s.asyncq, master.key)

    run_gateway(config, source, sink, ctx, workers=g.workers or default_workers(), load=load,
                async_queue=async_queue)


@click.command("reconciler", help="Run the reconciler alone (the only part that talks to the runtime).")
@store_options
@click.option("--runtime", "runtime_kind", type=click.Choice(["local", "docker", "kubernetes"]), default=None,
              help="Runtime backend (default local).")
def reconciler(data_dir: str | None, database_url: str | None, runtime_kind: str | None) -> None:
    from arkserve.reconciler.config import ReconcilerConfig
    from arkserve.reconciler.loop import Reconciler
    from arkserve.registry.pulls import RegistryPulls
    from arkserve.runtimes.factory import make_runtime
    from arkserve.store.db import open_store

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url, "runtime.kind": runtime_kind})
    _logging(s.log_level)
    try:
        runtime = make_runtime(s.runtime.kind, s.data_dir, s.runtime.docker_url,
                               docker_instance=s.runtime.docker_instance,
                               docker_network=s.runtime.docker_network, replica_user=s.runtime.replica_user,
                               sandbox_paths=s.runtime.sandbox_paths, kube=s.runtime,
                               stop_grace_s=ReconcilerConfig.stop_grace_s)
        store = open_store(s.database_url, busy_timeout_ms=s.store.busy_timeout_ms)
    except ArkserveError as exc:
        raise click.ClickException(exc.message) from None
    pulls = (RegistryPulls(s.registry_address, s.data_dir, s.registry.token_ttl_s,
                            listen=s.registry_listen)
             if s.registry.enabled and s.runtime.kind in ("docker", "kubernetes") else None)
    config = ReconcilerConfig(retention_s=s.retention_days * 86400,
                              model_cache_bytes=int(s.runtime.model_cache_gib * 1024**3),
                              cpu_overcommit=s.runtime.cpu_overcommit, memory_overcommit=s.runtime.memory_overcommit,
                              inventory_every_s=s.runtime.inventory_every_s,
                              async_request_timeout_s=s.asyncq.request_timeout_s)
    from arkserve.billing.meter import Meter

    elector = _elector(s, store)
    if elector is not None:  # several copies: only the lease holder acts (docs/kubernetes.md, leader election)
        work = _fenced_store(s, elector) or store
        _run_elected(s, elector, work, runtime, lambda rt: Reconciler(work, rt, s.data_dir, config, registry=pulls,
                                                                      autoscaler=_autoscaler(s, work)))
        return
    rec = Reconciler(store, runtime, s.data_dir, config, registry=pulls, autoscaler=_autoscaler(s, store))
    meter = Meter(store, s.billing).start()  # metering, prepaid expiry and balances: a thread of this process
    signal.signal(signal.SIGTERM, lambda *_: rec.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: rec.stop_event.set())
    try:
        rec.run()
    finally:
        rec.stop()
        meter.stop()  # a last pass bills up to now, before replicas (and their rows) go away
        if s.runtime.stop_replicas_on_exit:
            rec.stop_all_replicas()
        runtime.close()


def _autoscaler(s: Settings, store: Any) -> Any:
    """The autoscaler grows a service only as far as the API's admission would (quotas, balances)."""
    from arkserve.billing import guard
    from arkserve.reconciler.autoscaler import Autoscaler

    def admit(conn: Any, svc: Any, n: int) -> None:
        guard.admit_scale(conn, s.billing, svc, n)  # a canary's replicas grow with the count

    return Autoscaler(store, admit=admit)


def _elector(s: Settings, store: Any) -> Any:
    from arkserve.leases.factory import make_elector, resolve

    try:
        kind = resolve(s.reconciler.leader_election, s.database_url, s.runtime.kind)
        return make_elector(kind, store, duration_s=s.reconciler.lease_duration_s,
                            namespace=s.reconciler.lease_namespace or s.runtime.kube_namespace,
                            kubeconfig=s.runtime.kubeconfig)
    except (ArkserveError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _fenced_store(s: Settings, elector: Any) -> Any:
    """Under the store's lease, the reconciler and meter write through an engine of their own whose write
    transactions check the lease first (``store/fence.py``); the elector renews on the unfenced one."""
    from arkserve.leases.store import StoreLease
    from arkserve.store import fence
    from arkserve.store.db import open_store

    if not isinstance(elector.backend, StoreLease):
        return None
    fenced = open_store(s.database_url, busy_timeout_ms=s.store.busy_timeout_ms, migrate_schema=False)
    fence.install(fenced, elector.backend.lease, lambda: (elector.holder, elector.token))
    logging.getLogger("arkserve.reconciler").info("store writes fenced by the %s lease", elector.backend.lease)
    return fenced


def _run_elected(s: Settings, elector: Any, store: Any, runtime: Any, make: Any) -> None:
    """The reconciler and the meter act only while this process holds the lease; a second copy waits."""
    import threading

    from arkserve.billing.meter import Meter
    from arkserve.reconciler.leader import FencedRuntime, lead

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("arkserve.reconciler").info("leader election: %s lease, %g s; acting only while holding it",
                                                  elector.backend.name, elector.duration_s)
    try:
        last = lead(elector, stop, lambda leading: make(FencedRuntime(runtime, leading)),
                    lambda: Meter(store, s.billing))
        if last is not None and s.runtime.stop_replicas_on_exit:
            last.stop_all_replicas()
    finally:
        elector.stop(release=True)  # the next leader takes over at once, not a lease later
        runtime.close()
