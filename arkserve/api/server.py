"""How the API is served: uvicorn with a deadline on request headers, so slow clients cannot hold connections.

uvicorn bounds idle keep-alive connections but not a client that sends its request line and headers a byte at
a time (or connects and sends nothing): each such connection would stay open for ever. :class:`DeadlineProtocol`
is uvicorn's own httptools protocol with one timer more: from the connection's first moment, and again from
the first byte of each later request, the headers must be complete within ``api.header_timeout_s``; else the
client gets ``408`` (JSON, like every API error) and the connection is closed. A request whose body is still
arriving when its response is complete (a route that did not read it) closes the connection too, so a body
cannot trickle on behind a finished response. Bodies a route reads are bounded by ``arkserve.api.limits``.
Each request's cycle is :class:`arkserve.api.transfer.Cycle`: zero-copy file sends and uncopied bodies.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from arkserve.api import transfer
from arkserve.settings import Settings


def _timeout_response() -> bytes:
    body = json.dumps({"code": "RequestTimeout", "message": "request headers not received in time",
                       "request_id": secrets.token_hex(12)}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


LINGER_S = 2.0  # how long a half-closed connection drops what the client still sends


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on each request's headers (see the module's docstring)."""

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._begun = False  # bytes of a request's head arrived
        self._lingering = False  # half-closed after a response whose request body was not all read

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._begun:
            self.transport.write(_timeout_response())
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._begun = False
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:
            transfer.adopt(self.cycle, self.transport)  # zero-copy sends, uncopied bodies

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, transfer.Cycle):
            super().on_body(body)
            return
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        if cycle.add_piece(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_response_complete(self) -> None:
        cycle = self.cycle  # the cycle that completed, unless the client's next request already replaced it
        if cycle is not None and cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            self._linger()  # the body nobody reads would otherwise keep the connection alive
            return
        super().on_response_complete()

    def _linger(self) -> None:
        """End a connection whose request body was not all read (the response said ``connection: close``):
        half-close it, so the response is followed by a FIN, then read and drop what the client still sends for
        at most :data:`LINGER_S` (or until its own FIN: asyncio closes then). Closing at once with unread bytes
        would send an RST, which can destroy the response before the client has read it (a WebDAV client's
        PROPFIND answered 404 before its body was read lost the 404)."""
        self._lingering = True
        self._disarm()
        try:
            self.transport.write_eof()
        except (OSError, RuntimeError):
            self.transport.close()
            return
        self.transport.resume_reading()
        self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # the rest of a body nobody reads, or a request sent despite connection: close
        super().data_received(data)


def protocol_for(settings: Settings) -> type[DeadlineProtocol]:
    return type("ApiProtocol", (DeadlineProtocol,), {"header_timeout_s": settings.api.header_timeout_s})


def config(app: Any, settings: Settings, *, host: str | None = None, port: int | None = None,
           log_level: str | None = None,
           lifespan: Literal["auto", "on", "off"] = "auto") -> uvicorn.Config:
    """The uvicorn configuration the API runs under (``arkserve api`` and the tests alike)."""
    return uvicorn.Config(app, host=host or settings.api.host, port=port or settings.api.port,
                          http=protocol_for(settings), log_level=log_level or settings.log_level,
                          server_header=False, timeout_graceful_shutdown=10, lifespan=lifespan,
                          timeout_keep_alive=5,
                          # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any local program (a
                          # replica) could then pick its address for the login throttle. Only named proxies.
                          proxy_headers=bool(settings.api.trusted_proxies),
                          forwarded_allow_ips=settings.api.trusted_proxies or None)


def run(app: Any, settings: Settings) -> None:
    uvicorn.Server(config(app, settings)).run()
