"""The in-process :class:`Gateway`: one worker's listeners, snapshot polling and shutdown.

In ``port`` addressing the set of listeners follows the snapshot (one per ``route.gateway_port``);
in ``host`` addressing one listener serves every service. Every listening socket is opened with
``SO_REUSEPORT`` so worker processes each bind their own and the kernel spreads connections.
Shutdown order (draining): stop accepting, give idle keep-alive connections ``drain_idle_s`` for
a last request (answered with ``Connection: close``), close open tunnels, let in-flight exchanges
finish (bounded by ``shutdown_grace_s``, or cut short by ``force``), then abort what is left. The
admin listener stays open while draining and its ``/healthz`` answers 503 ``draining``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

from arkserve.domain.routing import RoutingSnapshot
from arkserve.gateway.admin import AdminProtocol
from arkserve.gateway.asyncintake import AsyncQueue
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.core import Core
from arkserve.gateway.load import LoadSink
from arkserve.gateway.proxy import IDLE, TUNNEL, client_protocol
from arkserve.gateway.requestlog import RecordSink
from arkserve.gateway.snapshot import SnapshotHolder, SnapshotSource
from arkserve.gateway.tlslisten import TlsListener

log = logging.getLogger("arkserve.gateway")


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Gateway:
    """One worker's gateway on the running loop. ``async with Gateway(cfg, source) as gw: ...``."""

    def __init__(self, config: GatewayConfig, source: SnapshotSource, sink: RecordSink | None = None,
                 ssl_context: ssl.SSLContext | None = None, metrics_dir: Path | None = None,
                 load: LoadSink | None = None, async_queue: AsyncQueue | None = None) -> None:
        self.config = config
        self.async_queue = async_queue  # asynchronous inference (asyncintake.py); None: off
        self.load = load  # the autoscaler's load reports and wakes (gateway/load.py)
        self.source = source
        self.sink = sink
        self.ssl_context = ssl_context
        self.metrics_dir = metrics_dir
        self.listeners: dict[int, asyncio.Server | TlsListener] = {}  # gateway port -> server
        self.admin: asyncio.Server | None = None
        self.core: Core | None = None
        self.holder: SnapshotHolder | None = None
        self._sync_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.core = core = Core(self.config, self.sink, self.load, self.async_queue)
        self.holder = SnapshotHolder(self.source, self._on_snapshot, self.config.snapshot_poll_s)
        await self.holder.refresh()
        core.start()
        self.holder.start()
        if self.config.addressing == "host":
            await self._open(self.config.host_port)
        else:
            await self._sync_listeners()
        if self.config.admin_port >= 0:
            sock = listen_socket(self.config.admin_host, self.config.admin_port)
            self.admin = await core.loop.create_server(
                lambda: AdminProtocol(core.metrics, self.metrics_dir, self._health,
                                      self.async_queue.metrics_text if self.async_queue else None), sock=sock)
        if self.metrics_dir is not None:
            self._spawn(self._dump_metrics())

    async def stop(self, grace_s: float | None = None, force: asyncio.Event | None = None) -> None:
        """Drain, then close. ``force`` (a second SIGTERM/Ctrl-C) ends the wait for in-flight exchanges."""
        core = self.core
        if core is None:
            return
        grace = self.config.shutdown_grace_s if grace_s is None else grace_s
        core.closing = True  # the snapshot keeps being polled: a request queued now may still get a replica
        for srv in self.listeners.values():
            srv.close()
        self.listeners.clear()
        last_call = core.clock + self.config.drain_idle_s
        for conn in list(core.connections):
            if conn.state == IDLE and not conn.pipeline:  # a request may be on its way: serve it, then close
                conn.deadline = min(conn.deadline, last_call)
            elif conn.state == TUNNEL:  # a WebSocket never ends by itself: close it now, not at the grace's end
                conn.close_tunnel()
        deadline = time.monotonic() + grace
        while core.connections and time.monotonic() < deadline and not (force is not None and force.is_set()):
            await asyncio.sleep(0.05)
        if self.holder is not None:
            await self.holder.stop()
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        for conn in list(core.connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        core.stop()
        await asyncio.sleep(0)
        self.core = None

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop(grace_s=2.0)

    async def refresh(self) -> None:
        """Poll the source now and apply a new snapshot (tests; production polls every 0.5 s)."""
        assert self.holder is not None
        await self.holder.refresh()
        if self.config.addressing != "host":
            await self._sync_listeners()

    @property
    def ports(self) -> list[int]:
        return sorted(self.listeners)

    @property
    def admin_port(self) -> int:
        assert self.admin is not None
        return int(self.admin.sockets[0].getsockname()[1])

    def bound_port(self, port: int) -> int:
        """The real port of a listener (``host_port=0`` binds an ephemeral one)."""
        return int(self.listeners[port].sockets[0].getsockname()[1])

    # ------------------------------------------------------------------------------ internals
    def _health(self) -> dict[str, object]:
        core = self.core
        draining = core is None or core.closing
        return {"status": "draining" if draining else "ok", "snapshot_version": core.snapshot.version if core else 0,
                "connections": len(core.connections) if core else 0, "pid": os.getpid()}

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_snapshot(self, snap: RoutingSnapshot) -> None:
        assert self.core is not None
        ports_moved = self.core.apply(snap)
        if self.config.addressing != "host" and not self.core.closing and (
                ports_moved or len(self.listeners) != len(self.core.port_routes)):  # or a bind to retry
            self._spawn(self._sync_listeners())

    async def _open(self, port: int) -> None:
        core = self.core
        assert core is not None
        try:
            sock = listen_socket(self.config.host, port)
        except OSError as exc:
            log.error("cannot listen on %s:%s (retried later): %s", self.config.host, port, exc)
            return
        if self.ssl_context is not None:  # answers plain HTTP with a 400 that says to use HTTPS
            self.listeners[port] = TlsListener(core.loop, sock, client_protocol(core, port, True),
                                               self.ssl_context, port, self.config.header_timeout_s)
            return
        self.listeners[port] = await core.loop.create_server(client_protocol(core, port, False), sock=sock)

    async def _sync_listeners(self) -> None:
        async with self._sync_lock:
            core = self.core
            if core is None or core.closing:
                return
            wanted = set(core.port_routes)
            for port in set(self.listeners) - wanted:
                self.listeners.pop(port).close()  # open connections keep running
            for port in sorted(wanted - set(self.listeners)):
                await self._open(port)

    async def _dump_metrics(self) -> None:
        assert self.metrics_dir is not None
        while True:
            await asyncio.sleep(1.0)
            if self.core is not None:
                with contextlib.suppress(OSError):
                    self.core.metrics.dump(self.metrics_dir)


