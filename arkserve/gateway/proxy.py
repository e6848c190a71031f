"""The per-connection client protocol: httptools parsing, framing checks, limits, auth, pipelining.

Each parsed request becomes an :class:`Exchange`; they run one at a time per connection in
arrival order (pipelined requests wait with their bodies buffered, reading paused). Deadlines
are plain floats checked by the core's sweep every ``tick_s`` (no timer per request).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

import httptools

from arkserve.gateway.exchange import PAUSE_BUFFER, PAUSE_UPSTREAM, Exchange
from arkserve.gateway.http import HttpError, after_upgrade, error_response, request_id
from arkserve.gateway.phase import FINISHED
from arkserve.gateway.request import build_exchange

if TYPE_CHECKING:
    from arkserve.gateway.core import Core

log = logging.getLogger("arkserve.gateway")
INF = float("inf")
IDLE, HEADERS, BODY, WAIT, CLOSING, UPGRADING, TUNNEL = 0, 1, 2, 3, 4, 5, 6
_MAX_PIPELINE = 16
_MAX_EARLY = 64 * 1024  # bytes a client may send behind an Upgrade handshake before it is answered
# A read at least this large that may start with a request head has the head parsed on its own, so the body behind
# it can bypass the parser (see ``ClientConnection.left``): below this, copying the body costs less than the split.
_SPLIT: Final = 16 * 1024


class _Closing(Exception):
    """Stops the parser: what a client sends behind a request after which the connection closes (a refusal, a
    malformed request, ``Connection: close``) is not read as requests (RFC 9112 9.6): it never reaches a replica."""


def client_protocol(core: Core, port: int, tls: bool) -> Callable[[], asyncio.Protocol]:
    """The factory a listener takes (asyncio types it as returning a Protocol subclass)."""
    return cast("Callable[[], asyncio.Protocol]", lambda: ClientConnection(core, port, tls))


class ClientConnection:
    """An ``asyncio.Protocol`` by its methods, not by inheritance: without a Python base class the optional
    compiled build (``arkserve.gateway.fast``) makes it a native class with fixed attribute slots."""

    def __init__(self, core: Core, port: int, tls: bool) -> None:
        self.core = core
        self.port = port
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client = ""
        self.fwd = b""
        self.write_paused = False
        self.state = IDLE
        self.deadline = INF
        # bytes read while a head is incomplete (the 431 check while reading): in HEADERS, or in BODY after a chunk
        # header with no data behind it yet, where the last chunk's trailer section may be under way
        self.hdr_bytes = 0
        self.hdr_size = 0  # request line, header and trailer bytes as parsed (the 431 check)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.reading: Exchange | None = None
        self.pipeline: deque[Exchange] = deque()
        self.paused = 0
        self.closed = False
        self.fatal: bytes | None = None
        # the last Host that passed the checks that depend only on it and this connection (request.py):
        # clients send the same one on every request of a connection, so a comparison replaces the parsing
        self.host_ok: bytes | None = None
        self.host_port_ok: bytes | None = None
        # Body bytes of the request being read that bypass the parser: a Content-Length body on a kept-alive
        # connection is counted here and handed on as the received chunks (or slices of them), where llhttp would
        # copy each piece into a new bytes object for on_body. -1: such a body began in the read being parsed (its
        # count is taken after it, _take). 0: the parser frames the body (chunked, an Upgrade, a connection that
        # closes after the request) or no body is being read.
        self.left = 0

    # ------------------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = transport  # type: ignore[assignment]
        peer = t.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else str(peer or "")
        self.fwd = (b"x-forwarded-for: " + self.client.encode() +
                    (b"\r\nx-forwarded-proto: https\r\n" if self.tls else b"\r\nx-forwarded-proto: http\r\n"))
        self.deadline = self.core.clock + self.core.config.idle_timeout_s
        self.core.connections.add(self)

    def data_received(self, data: bytes | memoryview) -> None:
        if self.left > 0:
            self._stream(data)
            return
        if self.state >= CLOSING:
            if self.state == UPGRADING:
                self._early(data)
            return
        if self.state != BODY:
            n = len(data)
            if n >= _SPLIT and isinstance(data, bytes) and self._split(data):
                return
            self.hdr_bytes += n
        elif self.hdr_bytes:  # after a chunk header (on_chunk_header): maybe trailers, counted like a head
            self.hdr_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # an Upgrade request was parsed: no more HTTP on here
            ex = self.pipeline[-1] if self.pipeline else None
            if ex is not None and ex.upgrade is not None and ex.resp != FINISHED:
                self.state, self.deadline = UPGRADING, INF
                self._early(after_upgrade(data, exc))
            else:  # already answered (refused); the connection closes after the answer
                self.state, self.deadline = CLOSING, INF
            return
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _Closing):
                self.state, self.deadline, self.left = CLOSING, INF, 0
                if self.transport is not None:
                    self.transport.pause_reading()
                return
            if isinstance(cause, HttpError):
                self.fatal_error(cause)
            elif isinstance(exc, httptools.HttpParserCallbackError):
                log.error("gateway bug while handling a request", exc_info=cause)
                self.fatal_error(HttpError(500, "InternalError", "internal gateway error"))
            else:
                self.fatal_error(HttpError(400, "BadRequest", f"malformed HTTP request: {exc}"))
            return
        if self.left:
            self._take()
        elif self.hdr_bytes and self.state <= BODY and self.hdr_bytes > self.core.config.max_header_bytes:
            self.fatal_error(self._too_large())

    def _split(self, data: bytes) -> bool:
        """A large read that may start with a request head: parse up to the first blank line alone, so that a body
        behind it can bypass the parser. Any split is safe: the parser decides what the bytes are, and only a body
        it has not consumed (``bytes_in``) is counted past it; the blank line found only makes that likely."""
        end = data.find(b"\r\n\r\n") + 4
        if end < 4 or end >= len(data):
            return False
        view = memoryview(data)
        self.data_received(view[:end])
        self.data_received(view[end:])
        return True

    def _take(self) -> None:
        """After a read in which a Content-Length body began: if the parser stopped inside it (it holds no state
        but the count of bytes left), the rest bypasses it, and a fresh parser takes the next request (_stream)."""
        ex = self.reading
        if self.state == BODY and ex is not None and ex.keep_alive and ex.cl > ex.bytes_in:
            self.left = ex.cl - ex.bytes_in
        else:
            self.left = 0

    def _stream(self, data: bytes | memoryview) -> None:
        """Body bytes past the parser: the request's share goes to its exchange as it is (no copy); after the last
        one, a fresh parser takes what follows (the old one still waits for the body it never saw)."""
        ex = self.reading
        left = self.left
        n = len(data)
        self.deadline = self.core.clock + self.core.config.body_timeout_s
        if n < left:
            self.left = left - n
            ex.feed_body(data)  # type: ignore[union-attr]
            return
        self.left = 0
        if n == left:
            ex.feed_body(data)  # type: ignore[union-attr]
        else:
            data = memoryview(data)
            ex.feed_body(data[:left])  # type: ignore[union-attr]
        self.parser = httptools.HttpRequestParser(self)
        self.on_message_complete()
        if n > left:
            self.data_received(data[left:])

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.core.connections.discard(self)
        for ex in self.pipeline:
            ex.client_lost()
        if self.reading is not None and self.reading not in self.pipeline:
            self.reading.client_lost()
        self.pipeline.clear()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.pipeline[0] if self.pipeline else None
        if ex is not None and ex.up is not None:
            ex.up.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.pipeline[0] if self.pipeline else None
        if ex is not None and ex.up is not None:
            ex.up.resume_reading()

    # ------------------------------------------------------------------------------ httptools
    def on_message_begin(self) -> None:
        pl = self.pipeline
        if self.closed or (pl and not pl[-1].keep_alive):  # the connection ends after the request before this one
            raise _Closing
        self.state = HEADERS
        self.deadline = self.core.clock + self.core.config.header_timeout_s
        self.url = b""
        self.headers = []
        self.hdr_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.hdr_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.hdr_size += len(name) + len(value) + 4
        if self.state == HEADERS:
            self.headers.append((name, value))
        elif self.hdr_size > self.core.config.max_header_bytes:  # a trailer: never forwarded, only counted
            raise self._too_large()

    def _too_large(self) -> HttpError:
        what = "request line, headers and trailers" if self.state == BODY else "request line and headers"
        return HttpError(431, "HeadersTooLarge", f"{what} exceed {self.core.config.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        self.hdr_bytes = 0
        if self.hdr_size > self.core.config.max_header_bytes:
            raise self._too_large()
        ex = build_exchange(self)
        self.reading = ex
        if ex.cl > 0 or ex.chunked:
            self.state = BODY
            self.deadline = self.core.clock + self.core.config.body_timeout_s
            self.left = -1 if not ex.chunked and ex.upgrade is None else 0  # see _take
        else:
            self.state = WAIT
            self.deadline = INF
        self.pipeline.append(ex)
        if len(self.pipeline) == 1:
            ex.start()
        elif len(self.pipeline) >= _MAX_PIPELINE:
            self.pause(PAUSE_BUFFER)

    def on_chunk_header(self) -> None:
        """A chunk's size line was parsed. The chunk may be the last one (size 0), which a trailer section follows
        until a blank line: until data comes (on_body), bytes read count towards the head's limit (data_received)."""
        self.hdr_bytes = 1

    def on_body(self, body: bytes) -> None:  # a chunked body, or one that does not bypass the parser (left)
        self.hdr_bytes = 0
        self.deadline = self.core.clock + self.core.config.body_timeout_s
        self.reading.feed_body(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        ex, self.reading = self.reading, None
        self.hdr_bytes = 0
        if self.state == BODY:
            if self.pipeline:
                self.state, self.deadline = WAIT, INF
            else:  # its response already ended (an early answer); the body was drained
                self.state, self.deadline = IDLE, self.core.clock + self.core.config.idle_timeout_s
        if ex is not None:
            ex.body_end()

    # ------------------------------------------------------------------------------ upgrades
    def _early(self, data: bytes | memoryview) -> None:
        ex = self.pipeline[-1] if self.pipeline else None
        if ex is None or ex.resp == FINISHED or not data:
            return
        ex.early += bytes(data)
        if len(ex.early) > _MAX_EARLY:
            self.pause(PAUSE_BUFFER)

    def become_tunnel(self) -> None:
        """The replica accepted the Upgrade: from now on the transport belongs to a tunnel."""
        self.state, self.deadline = TUNNEL, INF
        if self.paused and self.transport is not None:
            self.paused = 0
            self.transport.resume_reading()

    def open_tunnel(self) -> Exchange | None:
        """The exchange whose tunnel this connection carries, if it has become one."""
        if self.state == TUNNEL and self.pipeline and self.pipeline[0].tunnel is not None:
            return self.pipeline[0]
        return None

    def close_tunnel(self) -> None:
        ex = self.open_tunnel()
        if ex is not None:
            ex.tunnel.close()  # type: ignore[union-attr]

    # ------------------------------------------------------------------------------ control
    def pause(self, bit: int) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused |= bit

    def resume(self, bit: int) -> None:
        if self.paused & bit:
            self.paused &= ~bit
            if not self.paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def exchange_finished(self, ex: Exchange) -> None:
        pl = self.pipeline
        if pl and pl[0] is ex:
            pl.popleft()
        if not ex.keep_alive or self.closed:
            self._close()
            return
        if self.paused:
            self.resume(PAUSE_UPSTREAM)
        if pl:
            pl[0].start()
            if len(pl) < _MAX_PIPELINE:
                self.resume(PAUSE_BUFFER)
        elif self.fatal is not None:
            self._close()
        elif self.state == WAIT:
            self.state = IDLE
            self.deadline = self.core.clock + self.core.config.idle_timeout_s
            if self.core.closing:
                self._close()

    def write_error(self, ex: Exchange, err: HttpError) -> None:
        close = not ex.keep_alive or self.core.closing
        ex.keep_alive = not close
        if self.transport is not None and not self.closed:
            self.transport.write(error_response(err.status, err.code, err.message, ex.rid, close=close,
                                                retry_after=err.retry_after, head_only=ex.method == b"HEAD"))

    def fatal_error(self, err: HttpError) -> None:
        """The byte stream is unusable: answer (after the responses still owed) and close."""
        self.state, self.deadline = CLOSING, INF
        self.left = 0
        if self.transport is not None:
            self.transport.pause_reading()
        ex, self.reading = self.reading, None
        if ex is not None:
            if self.pipeline and self.pipeline[0] is ex:
                ex.keep_alive = False
                ex.fail(err, close=True)  # writes the error (or aborts); finishing closes the connection
                return
            if ex in self.pipeline:
                self.pipeline.remove(ex)
            ex.client_lost()
        self.fatal = error_response(err.status, err.code, err.message, request_id(None), close=True)
        if not self.pipeline:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            if self.fatal and not self.pipeline:
                self.transport.write(self.fatal)
                self.fatal = None
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def check(self, now: float) -> None:
        if now >= self.deadline:
            if self.state == IDLE:
                self._close()
            elif self.state == HEADERS:
                self.fatal_error(HttpError(408, "RequestTimeout", "request headers not received within "
                                           f"{self.core.config.header_timeout_s:g} s"))
            elif self.state == BODY and not self.paused:
                self.fatal_error(HttpError(408, "RequestTimeout", "request body stalled for "
                                           f"{self.core.config.body_timeout_s:g} s"))
            elif self.state == BODY:
                self.deadline = now + self.core.config.body_timeout_s
        if self.pipeline:
            self.pipeline[0].check(now)
