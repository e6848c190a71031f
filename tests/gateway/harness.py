"""Real servers on loopback for gateway tests: replicas that say who answered, and the gateway
running on its own uvloop thread (so tests stay plain synchronous code)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvloop

from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute, Upstream
from arkserve.gateway import Gateway, GatewayConfig, MemorySink, RecordSink, StaticSource

SK = "uFDCEZCbi5bya6DinCwW2GxEfzkxTnlbzN0mGlxSCg4="
SK2 = "v2kv9xFNRAH1hNJAOOTpArDGWGuxo9CUYxwlKtWgcDQ="


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Replica._Server

    def log_message(self, *args: Any) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the gateway gave up on this request (timeout tests)
            super().handle()

    def _body(self) -> tuple[int, str]:
        h = hashlib.sha256()
        n = 0
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                if not line:  # the gateway cut the body (an error answered to its client)
                    raise ConnectionResetError("the request body ended early")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    h.update(piece)
                    left -= len(piece)
                    n += len(piece)
                self.rfile.readline()
        else:
            left = int(self.headers.get("content-length") or 0)
            while left:
                piece = self.rfile.read(min(left, 65536))
                h.update(piece)
                left -= len(piece)
                n += len(piece)
        return n, h.hexdigest()

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        n, digest = self._body()
        path = self.path
        self.server.hits.append(path)
        info = {"replica": self.server.name, "path": path, "method": self.command, "length": n,
                "sha256": digest, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if path.startswith("/slow"):
            time.sleep(float(path.split("=", 1)[1]) if "=" in path else 1.0)
        if path.startswith("/big="):
            size = int(path.split("=", 1)[1])
            self.send_response(200)
            self.send_header("content-length", str(size))
            self.end_headers()
            piece = b"b" * 65536
            while size > 0:
                self.wfile.write(piece[:size])
                size -= len(piece)
            return
        if path.startswith("/sse"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            count = int(path.split("=", 1)[1]) if "=" in path else 5
            for i in range(count):
                data = f"data: {i} {'x' * 1000}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            return
        self._reply(200, info)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class Replica:
    """A stdlib HTTP/1.1 server on 127.0.0.1 in a thread; ``hits`` lists the paths it served."""

    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        name = ""
        hits: list[str]

    def __init__(self, name: str) -> None:
        self.server = self._Server(("127.0.0.1", 0), _Handler)
        self.server.name = name
        self.server.hits = []
        self.name = name
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def hits(self) -> list[str]:
        return self.server.hits

    def upstream(self) -> Upstream:
        return Upstream(self.name, "127.0.0.1", self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawReplica:
    """A raw TCP server on 127.0.0.1 for replicas that must control every byte: each accepted
    connection is handed to ``serve(conn)`` on its own thread. ``close()`` stops accepting."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    @staticmethod
    def read_head(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        """The next request head on ``conn`` (without its blank line) and the bytes after it, starting from what
        ``buf`` already holds; None when the peer closes first."""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    @staticmethod
    def skip_body(conn: socket.socket, buf: bytes, length: int) -> bytes | None:
        """Read past a body of ``length`` bytes (``buf`` holds its start); the bytes after it, None when the peer
        closes first."""
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        return buf[length:]

    @staticmethod
    def content_length(head: bytes) -> int:
        return next((int(v) for n, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                     if n.strip().lower() == b"content-length"), 0)

    def close(self) -> None:
        self.sock.close()


def read_answers(s: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """The next ``count`` responses on ``s`` (each framed by its Content-Length): status and body."""
    out: list[tuple[int, bytes]] = []
    buf = b""
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            assert chunk, (out, buf)
            buf += chunk
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = int(next(v for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                          if k.strip().lower() == b"content-length"))
        while len(buf) < length:
            chunk = s.recv(65536)
            assert chunk, (out, buf)
            buf += chunk
        out.append((int(head.split(b" ", 2)[1]), buf[:length]))
        buf = buf[length:]
    return out


def keys() -> dict[str, KeyEntry]:
    import base64
    return {"AKOWNER": KeyEntry("AKOWNER", base64.b64decode(SK), user_id=1, is_admin=False),
            "AKOTHER": KeyEntry("AKOTHER", base64.b64decode(SK2), user_id=2, is_admin=False)}


def snapshot(version: int, *routes: ServiceRoute) -> RoutingSnapshot:
    return RoutingSnapshot(version=version, services={r.name: r for r in routes}, keys=keys())


def route(name: str, upstreams: list[Upstream], port: int | None = None, **kw: Any) -> ServiceRoute:
    return ServiceRoute(name=name, owner_id=1, auth=kw.pop("auth", True), upstreams=tuple(upstreams),
                        gateway_port=port, **kw)


class GatewayThread:
    """A Gateway on a uvloop in a background thread."""

    def __init__(self, config: GatewayConfig, snap: RoutingSnapshot, ssl_context: Any = None,
                 sink: RecordSink | None = None) -> None:
        self.source = StaticSource(snap)
        self.sink = MemorySink()
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.gw = Gateway(config, self.source, sink or self.sink, ssl_context)
        self.call(self.gw.start())

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish(self, snap: RoutingSnapshot) -> None:
        self.source.set(snap)
        self.call(self.gw.refresh())

    def close(self) -> None:
        self.call(self.gw.stop(grace_s=2.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
