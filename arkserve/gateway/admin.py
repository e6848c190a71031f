"""The admin listener: ``GET /metrics`` (Prometheus text, summed over workers) and ``GET /healthz``
(200 ``{"status": "ok", …}``; 503 ``{"status": "draining", …}`` while the worker drains at shutdown, so a
load balancer in front stops sending)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from arkserve.gateway.metrics import Metrics, aggregate, render

_MAX_REQUEST = 8192


class AdminProtocol(asyncio.Protocol):
    def __init__(self, metrics: Metrics, metrics_dir: Path | None,
                 health: Callable[[], dict[str, object]], extra: Callable[[], str] | None = None) -> None:
        self.metrics = metrics
        self.extra = extra  # more exposition text, not summed over workers (the async queue's depth)
        self.metrics_dir = metrics_dir
        self.health = health
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_REQUEST and self.transport is not None:
                self.transport.close()
            return
        line = self.buf.split(b"\r\n", 1)[0].split(b" ")
        path = line[1].split(b"?", 1)[0] if len(line) == 3 else b""
        if line[0] not in (b"GET", b"HEAD"):
            self._send(405, b"text/plain", b"method not allowed\n")
        elif path == b"/metrics":
            text = render(aggregate(self.metrics, self.metrics_dir))
            if self.extra is not None:
                text += self.extra().encode()
            self._send(200, b"text/plain; version=0.0.4; charset=utf-8", text)
        elif path == b"/healthz":
            health = self.health()
            self._send(200 if health.get("status") == "ok" else 503, b"application/json",
                       json.dumps(health).encode())
        else:
            self._send(404, b"text/plain", b"not found\n")

    def _send(self, status: int, ctype: bytes, body: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, ctype, len(body), body))
        self.transport.close()
