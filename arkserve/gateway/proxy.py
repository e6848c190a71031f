"""The per-connection client protocol: httptools parsing, framing checks, limits, auth, pipelining.

Each parsed request becomes an :class:`Exchange`; they run one at a time per connection in
arrival order (pipelined requests wait with their bodies buffered, reading paused). Deadlines
are plain floats checked by the core's sweep every ``tick_s`` (no timer per request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import httptools

from arkserve.auth.signing import EMPTY_CONTENT_HASH, SignatureError, check_payload
from arkserve.gateway.auth import SIGNING_HEADERS, authenticate
from arkserve.gateway.exchange import PAUSE_BUFFER, PAUSE_UPSTREAM, Exchange
from arkserve.gateway.http import HOP_BY_HOP, HttpError, error_response, host_service, request_id, valid_host

if TYPE_CHECKING:
    from arkserve.gateway.core import Core

log = logging.getLogger("arkserve.gateway")
INF = float("inf")
IDLE, HEADERS, BODY, WAIT, CLOSING = 0, 1, 2, 3, 4
_SKIP = HOP_BY_HOP | {b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto", b"content-length",
                      b"expect", b"host", b"authorization", b"x-ark-access-key"} | SIGNING_HEADERS
_MAX_PIPELINE = 16


class ClientConnection(asyncio.Protocol):
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
        self.hdr_bytes = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.reading: Exchange | None = None
        self.pipeline: deque[Exchange] = deque()
        self.paused = 0
        self.closed = False
        self.fatal: bytes | None = None

    # ------------------------------------------------------------------------------ asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = transport  # type: ignore[assignment]
        peer = t.get_extra_info("peername")
        self.client = peer[0] if isinstance(peer, tuple) else str(peer or "")
        self.fwd = (b"x-forwarded-for: " + self.client.encode() +
                    (b"\r\nx-forwarded-proto: https\r\n" if self.tls else b"\r\nx-forwarded-proto: http\r\n"))
        self.deadline = self.core.clock + self.core.config.idle_timeout_s
        self.core.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSING:
            return
        if self.state != BODY:
            self.hdr_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:  # Upgrade headers are stripped; carry on as HTTP/1.1
            rest = data[exc.args[0]:] if exc.args and isinstance(exc.args[0], int) else b""
            if rest:
                self.data_received(rest)
            return
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, HttpError):
                self.fatal_error(cause)
            elif isinstance(exc, httptools.HttpParserCallbackError):
                log.error("gateway bug while handling a request", exc_info=cause)
                self.fatal_error(HttpError(500, "InternalError", "internal gateway error"))
            else:
                self.fatal_error(HttpError(400, "BadRequest", f"malformed HTTP request: {exc}"))
            return
        if self.state == HEADERS and self.hdr_bytes > self.core.config.max_header_bytes:
            self.fatal_error(HttpError(431, "HeadersTooLarge", "request line and headers exceed "
                                       f"{self.core.config.max_header_bytes} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.core.connections.discard(self)
        for ex in self.pipeline:
            ex.client_lost()
        if self.reading is not None and self.reading not in self.pipeline:
            self.reading.client_lost()
        self.pipeline.clear()

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
        self.state = HEADERS
        self.deadline = self.core.clock + self.core.config.header_timeout_s
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.hdr_bytes = 0
        ex = self._build()
        self.reading = ex
        if ex.cl > 0 or ex.chunked:
            self.state = BODY
            self.deadline = self.core.clock + self.core.config.body_timeout_s
        else:
            self.state = WAIT
            self.deadline = INF
        self.pipeline.append(ex)
        if len(self.pipeline) == 1:
            ex.start()
        elif len(self.pipeline) >= _MAX_PIPELINE:
            self.pause(PAUSE_BUFFER)

    def on_body(self, body: bytes) -> None:
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

    # ------------------------------------------------------------------------------ requests
    def _build(self) -> Exchange:
        core = self.core
        parser = self.parser
        method = parser.get_method()
        url = self.url
        http10 = parser.get_http_version() == "1.0"
        head = [method, b" ", url, b" HTTP/1.1\r\n"]
        host = rid = auth_value = te = None
        cl = -1
        expect = False
        signing: dict[str, str] = {}
        err: HttpError | None = None
        skip = _SKIP
        xff: bytes | None = None
        for name, value in self.headers:
            lname = name.lower()
            if lname not in skip:
                head += (name, b": ", value, b"\r\n")
                continue
            if lname == b"host":
                if host is not None:
                    err = HttpError(400, "BadHost", "more than one Host header")
                host = value
                head += (name, b": ", value, b"\r\n")
            elif lname in SIGNING_HEADERS:
                key = lname.decode()
                if key in signing:
                    err = HttpError(400, "BadRequest", f"more than one {name.decode()} header")
                signing[key] = value.decode("utf-8", "surrogateescape")
                if lname == b"authorization":
                    auth_value = value
                else:
                    head += (name, b": ", value, b"\r\n")
            elif lname == b"content-length":
                cl = int(value)
            elif lname == b"transfer-encoding":
                te = value
            elif lname == b"x-request-id":
                rid = value
            elif lname == b"expect":
                expect = value.lower() == b"100-continue"
            elif lname == b"x-forwarded-for" and core.config.trust_forwarded:
                xff = b"x-forwarded-for: " + value + b", " + self.fwd[len(b"x-forwarded-for: "):]
        rid_b = request_id(rid)
        chunked = te is not None
        if chunked and te.strip().lower() != b"chunked":  # type: ignore[union-attr]
            err = err or HttpError(400, "BadRequest", "only Transfer-Encoding: chunked is supported")
        if err is None:
            if host is None:
                err = HttpError(400, "BadHost", "the Host header is missing")
            elif not valid_host(host):
                err = HttpError(400, "BadHost", "the Host header is not a valid host[:port]")
            elif not url.startswith(b"/"):
                err = HttpError(400, "BadRequest", "the request target must be a path")
        head.append(self.fwd if xff is None else xff)
        head += (b"x-request-id: ", rid_b, b"\r\n")
        keep_alive = parser.should_keep_alive() and not core.closing
        route = None
        if err is None:
            if core.host_mode:
                svc = host_service(host, core.host_suffix)  # type: ignore[arg-type]
                route = core.services.get(svc) if svc is not None else None
            else:
                route = core.port_routes.get(self.port)
            if route is None:
                err = HttpError(404, "NoSuchService", "no service is served at this endpoint")
        if err is None and cl > core.config.max_body_bytes:
            err = HttpError(413, "PayloadTooLarge", f"body exceeds {core.config.max_body_bytes} bytes")
        ex = Exchange(self, core, route, method, url, head, rid_b, chunked, cl, keep_alive, http10)
        ex.expect = expect
        has_body = cl > 0 or chunked
        ex.req_done = not has_body
        if err is None and route is not None:
            if route.auth:
                signing["host"] = host.decode("utf-8", "surrogateescape")  # type: ignore[union-attr]
                try:
                    d = authenticate(core.snapshot, core.secrets.get, route, method, url, signing,
                                     time.time(), core.config.skew_s)
                except SignatureError as exc:
                    core.metrics.auth_failure(exc.code)
                    err = HttpError(exc.status, exc.code, exc.message)
                else:
                    ex.access_key, ex.claimed, ex.require_signed = d.access_key, d.claimed, d.require_signed
                    head += (b"x-ark-access-key: ", d.access_key.encode(), b"\r\n")
                    if d.must_spool(has_body):
                        ex.spool = core.new_spool()
                    elif not has_body:
                        try:
                            check_payload(d.claimed, EMPTY_CONTENT_HASH, 0, require_signed=d.require_signed)
                        except SignatureError as exc:
                            core.metrics.auth_failure(exc.code)
                            err = HttpError(exc.status, exc.code, exc.message)
            elif auth_value is not None:
                head += (b"authorization: ", auth_value, b"\r\n")
        ex.error = err
        return ex

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
