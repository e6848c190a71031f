"""Worker processes: :func:`run_gateway` forks ``workers`` processes that each run a
:class:`~arkserve.gateway.app.Gateway` on uvloop and bind the same ports with ``SO_REUSEPORT``.

The parent only supervises: it forwards SIGTERM/SIGINT (each worker then stops accepting, lets
in-flight requests finish within ``shutdown_grace_s`` and exits; a second signal ends that wait) and
restarts a worker that died unexpectedly. Per-worker metrics are summed through a shared temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import uvloop

from arkserve.gateway.app import Gateway, listen_socket
from arkserve.gateway.asyncintake import AsyncQueue
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.load import LoadSink
from arkserve.gateway.metricsdir import make_metrics_dir
from arkserve.gateway.requestlog import RecordSink
from arkserve.gateway.snapshot import SnapshotSource

__all__ = ["Gateway", "listen_socket", "run_gateway"]

log = logging.getLogger("arkserve.gateway")
SourceArg = SnapshotSource | Callable[[], SnapshotSource]
SinkArg = RecordSink | Callable[[], RecordSink] | None
LoadArg = LoadSink | Callable[[], LoadSink] | None  # autoscaling (gateway/load.py)
AsyncQueueArg = Callable[[], AsyncQueue] | None  # asynchronous inference (gateway/asyncintake.py): a factory


# ---------------------------------------------------------------------------------- processes
def _resolve(arg: object, proto: type) -> object:
    if arg is None or isinstance(arg, proto):
        return arg
    return arg() if callable(arg) else arg


async def _serve(config: GatewayConfig, source: SnapshotSource, sink: RecordSink | None,
                 ssl_context: ssl.SSLContext | None, metrics_dir: Path | None, load: LoadSink | None = None,
                 async_queue: AsyncQueue | None = None) -> None:
    stop, force = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        (force if stop.is_set() else stop).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    gw = Gateway(config, source, sink, ssl_context, metrics_dir, load, async_queue)
    await gw.start()
    # What start-up made (the modules, the first snapshot) lives as long as the worker. Frozen, a full collection
    # no longer walks it: under load each worker otherwise stopped for 37-61 ms every few seconds, and those stops
    # were the slowest requests of a run (docs/benchmarks.md, "Garbage collection in the workers").
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
        log.info("gateway worker %s draining (up to %g s)", os.getpid(), config.shutdown_grace_s)
    finally:
        await gw.stop(force=force)


def _worker(config: GatewayConfig, source: SourceArg, sink: SinkArg, ssl_context: ssl.SSLContext | None,
            metrics_dir: Path | None, load: LoadArg = None, async_queue: AsyncQueueArg = None) -> None:
    src = _resolve(source, SnapshotSource)
    aq = async_queue() if async_queue is not None else None  # after the fork: it holds store connections
    snk = _resolve(sink, RecordSink)
    ld = _resolve(load, LoadSink)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(config, src, snk, ssl_context, metrics_dir, ld, aq))  # type: ignore[arg-type]
    finally:
        if snk is not None:
            snk.close()  # type: ignore[attr-defined]
        if ld is not None:
            ld.close()  # type: ignore[attr-defined]


def run_gateway(config: GatewayConfig, source: SourceArg, sink: SinkArg = None,
                ssl_context: ssl.SSLContext | None = None, workers: int = 1, load: LoadArg = None,
                async_queue: AsyncQueueArg = None) -> None:
    """Serve until SIGTERM/SIGINT. ``source``/``sink`` may be objects or zero-argument factories
    (a factory is called inside each worker process, after the fork)."""
    workers = max(1, workers)
    config = replace(config, workers=workers)
    if workers == 1:
        _worker(config, source, sink, ssl_context, None, load, async_queue)
        return
    metrics_dir = make_metrics_dir()  # and the stale ones of gateways killed before are removed
    children: set[int] = set()
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _worker(config, source, sink, ssl_context, metrics_dir, load, async_queue)
            except BaseException:
                log.exception("gateway worker failed")
                code = 1
            os._exit(code)
        children.add(pid)

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            spawn()
        while children:
            try:
                pid, _status = os.wait()
            except ChildProcessError:
                break
            children.discard(pid)
            if not stopping:
                log.error("gateway worker %s exited; starting a new one", pid)
                time.sleep(0.5)
                spawn()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        shutil.rmtree(metrics_dir, ignore_errors=True)
