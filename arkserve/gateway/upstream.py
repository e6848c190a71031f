"""Connections to replicas: one asyncio protocol per TCP connection and a keep-alive pool.

An :class:`UpstreamConnection` carries one exchange at a time and forwards the parsed response
to it (``resp_head``/``resp_body``/``resp_end``/``upstream_lost``). Idle connections wait in
:class:`UpstreamPool` (LIFO per address) and are closed after ``upstream_idle_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

import httptools

from arkserve.gateway.http import HttpError, after_upgrade

if TYPE_CHECKING:
    from arkserve.gateway.exchange import Exchange
    from arkserve.gateway.tunnel import Tunnel

# The most a replica's response head (status line and headers) may take: beyond it the connection is closed and the
# client gets 502 UpstreamError, as nginx answers "upstream sent too big header" (its limit, proxy_buffer_size, is
# 4-8 KiB); the limit of a request head is GatewayConfig.max_header_bytes (64 KiB too by default).
MAX_RESPONSE_HEAD: Final = 64 * 1024


class UpstreamConnection:
    """An ``asyncio.Protocol`` by its methods (see ``proxy.ClientConnection``: a native class when compiled)."""

    def __init__(self, pool: UpstreamPool, address: tuple[str, int]) -> None:
        self.pool = pool
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.closed = False
        self.idle_since = 0.0
        self.hbuf = b""  # raw bytes of the response head being read (no per-header callbacks)
        self.hmore: bytearray | None = None  # a head that spans reads grows here instead (_more_head)
        self.in_head = True
        self.skip = False
        self.paused = False  # our writes to it are paused (its receive buffer is full)
        self.rpaused = False  # we stopped reading it (the client is slow)
        self.tunnel: Tunnel | None = None  # set when a 101 turned this connection into a tunnel

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:  # nothing was asked: a broken or misbehaving replica
            self.close()
            return
        if self.in_head:
            if self.hbuf or self.hmore is not None:
                if not self._more_head(ex, data):
                    return
            else:
                self.hbuf = data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            if isinstance(exc.__context__, HttpError):  # raised by on_headers_complete: not a reason to resend
                ex.upstream_refused(exc.__context__)
            else:
                ex.upstream_lost(exc)
            return
        except httptools.HttpParserUpgrade as exc:  # after a 101: the rest is the tunnel's
            if self.tunnel is not None:
                rest = after_upgrade(data, exc)
                if rest:
                    self.tunnel.relay(self.tunnel.upstream, rest)
            else:
                self.close()
                ex.upstream_refused(HttpError(502, "UpstreamError", "the replica switched protocols (101) "
                                              "although the request did not ask to"))
            return
        if ex.pending_head is not None and self.ex is ex:
            ex.flush_head()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.ex
        if ex is not None:
            self.ex = None
            ex.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.paused = True
        if self.ex is not None:
            self.ex.upstream_paused()

    def resume_writing(self) -> None:
        self.paused = False
        if self.ex is not None:
            self.ex.upstream_resumed()

    def _more_head(self, ex: Exchange, data: bytes) -> bool:
        """A response head that spans reads (rare): grown in place rather than copied whole per read, and bounded
        (what it holds before this read is head only). False: too large, the connection closed, the client told."""
        more = self.hmore
        if more is None:
            more = self.hmore = bytearray(self.hbuf)
            self.hbuf = b""
        elif len(more) > MAX_RESPONSE_HEAD:
            self._too_large(ex)
            return False
        more += data
        return True

    def _too_large(self, ex: Exchange) -> None:
        self.close()
        ex.upstream_refused(_head_too_large())

    # httptools (no on_status/on_header: the head is taken raw from hbuf)
    def on_headers_complete(self) -> None:
        buf = self.hbuf
        if self.hmore is not None:
            buf = bytes(self.hmore)
            self.hmore = None
        end = buf.find(b"\r\n\r\n")
        if end > MAX_RESPONSE_HEAD:
            raise _head_too_large()  # data_received fails the exchange
        status = self.parser.get_status_code()
        if status == 101 and self.parser.should_upgrade():
            self.in_head = False
            self.hbuf = b""
            ex = self.ex
            if ex is not None and ex.upgrade is not None:
                ex.resp_upgrade(buf[:end])
            else:
                self.skip = True  # unasked for: refused in data_received when llhttp stops at the upgrade
            return
        if status < 200:  # 100 Continue and friends: the gateway answered the client itself
            self.skip = True
            self.hbuf = buf[end + 4:]
            return
        self.in_head = False
        self.hbuf = b""
        if self.ex is not None:
            self.ex.resp_head(status, buf[:end])

    def on_body(self, body: bytes) -> None:
        if self.ex is not None:
            self.ex.resp_body(body)

    def on_message_complete(self) -> None:
        self.in_head = True
        if self.tunnel is not None:  # the 101's (empty) message: the tunnel owns the connection now
            return
        if self.skip:
            self.skip = False
            return
        ex = self.ex
        if ex is not None:
            ex.resp_end(self.parser.should_keep_alive())

    def pause_reading(self) -> None:
        if not self.rpaused and self.transport is not None:
            self.rpaused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.rpaused and self.transport is not None:
            self.rpaused = False
            self.transport.resume_reading()

    def close(self) -> None:
        """Close it; the exchange it carried (if any) hears nothing more from it."""
        self.ex = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _head_too_large() -> HttpError:
    return HttpError(502, "UpstreamError", f"the replica's response head exceeds {MAX_RESPONSE_HEAD} bytes")


class UpstreamPool:
    def __init__(self, max_idle: int, idle_s: float) -> None:
        self.idle: dict[tuple[str, int], list[UpstreamConnection]] = {}
        self.max_idle = max_idle
        self.idle_s = idle_s
        self.clock = 0.0

    def take(self, address: tuple[str, int]) -> UpstreamConnection | None:
        conns = self.idle.get(address)
        while conns:
            c = conns.pop()
            if not c.closed and c.transport is not None and not c.transport.is_closing():
                return c
        return None

    def put(self, conn: UpstreamConnection) -> None:
        conns = self.idle.get(conn.address)
        if conns is None:
            conns = self.idle[conn.address] = []
        if conn.closed or len(conns) >= self.max_idle:
            conn.close()
            return
        conn.ex = None
        if conn.rpaused:
            conn.resume_reading()
        conn.idle_since = self.clock
        conns.append(conn)

    async def connect(self, address: tuple[str, int]) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        factory = cast("Callable[[], asyncio.Protocol]", lambda: UpstreamConnection(self, address))
        _, proto = await loop.create_connection(factory, *address)
        return cast(UpstreamConnection, proto)

    def sweep(self, now: float) -> None:
        limit = now - self.idle_s
        for address, conns in list(self.idle.items()):
            keep = [c for c in conns if not c.closed and c.idle_since >= limit]
            for c in conns:
                if c not in keep:
                    c.close()
            if keep:
                self.idle[address] = keep
            else:
                del self.idle[address]

    def discard(self, address: tuple[str, int]) -> None:
        """Close the idle connections to ``address`` (one of them was found closed under a request)."""
        for c in self.idle.pop(address, ()):
            c.close()

    def close_all(self) -> None:
        for conns in self.idle.values():
            for c in conns:
                c.close()
        self.idle.clear()

    def stats(self) -> dict[str, Any]:
        return {f"{h}:{p}": len(c) for (h, p), c in self.idle.items()}
