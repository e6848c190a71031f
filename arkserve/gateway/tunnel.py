"""WebSocket (any HTTP/1.1 ``Upgrade``) tunnels: after the replica answers 101, bytes both ways.

The handshake is an ordinary request: routed, signed and checked, queued and balanced like any
other. When the replica switches protocols, the exchange relays its 101 and hands both transports
to a :class:`Tunnel` (``transport.set_protocol``), which copies bytes between them with
backpressure: a side whose peer cannot take more is not read. Either side closing, or nothing
moving for ``GatewayConfig.tunnel_idle_s``, closes both; gateway shutdown closes tunnels at once
(they never finish by themselves). The exchange then finishes: one request-log record with status
101, the tunnel's whole life as its latency and its bytes each way. The replica's slot (least
outstanding, ``max_concurrency``) is held for the tunnel's life.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from arkserve.gateway.exchange import Exchange


class _Side(asyncio.Protocol):
    """One end of the tunnel: what arrives here is written to the other end's transport."""

    def __init__(self, tunnel: Tunnel, transport: asyncio.Transport, from_client: bool) -> None:
        self.tunnel = tunnel
        self.transport = transport
        self.from_client = from_client
        self.peer: _Side | None = None

    def data_received(self, data: bytes) -> None:
        self.tunnel.relay(self, data)

    def eof_received(self) -> bool:
        self.tunnel.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.close()

    def pause_writing(self) -> None:  # our transport is full: stop reading the other end
        if self.peer is not None and not self.peer.transport.is_closing():
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()


class Tunnel:
    __slots__ = ("client", "closed", "ex", "idle_s", "upstream")

    def __init__(self, ex: Exchange, client: asyncio.Transport, upstream: asyncio.Transport,
                 early: bytes) -> None:
        self.ex = ex
        self.closed = False
        self.idle_s = ex.core.config.tunnel_idle_s
        self.client = _Side(self, client, from_client=True)
        self.upstream = _Side(self, upstream, from_client=False)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        client.set_protocol(self.client)
        upstream.set_protocol(self.upstream)
        ex.deadline = ex.core.clock + self.idle_s
        if early:  # sent by the client right behind its handshake, before the 101
            self.relay(self.client, early)

    def relay(self, side: _Side, data: bytes) -> None:
        if self.closed:
            return
        ex = self.ex
        if side.from_client:
            ex.bytes_in += len(data)
        else:
            ex.bytes_out += len(data)
        side.peer.transport.write(data)  # type: ignore[union-attr]
        ex.deadline = ex.core.clock + self.idle_s

    def close(self) -> None:
        """Close both ends (idempotent) and finish the exchange: status 101, its bytes, its life."""
        if self.closed:
            return
        self.closed = True
        self.client.transport.close()
        self.upstream.transport.close()
        ex = self.ex
        ex.keep_alive = False
        ex.tunnel_closed()
