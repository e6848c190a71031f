"""The dispatcher's sender reaches the gateway on loopback directly: never through a proxy named in the
environment (the request carries the internal token derived from the master key, and the stored body)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from arkserve import settings
from arkserve.asyncq.delivery import Sender


class _Gateway(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("x-ark-internal", ""))
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[int]:
    _Gateway.seen.clear()  # (other test files use this fixture too)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_sender_ignores_proxies_in_the_environment(tmp_path: Path, gateway: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(8)
    proxy.settimeout(0.2)
    url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    s = settings.load({"data_dir": str(tmp_path), "asyncq.request_timeout_s": 3,
                       "gateway.tls": False}, env={})
    sender = Sender(s, b"internal-token")
    try:
        row: dict[str, Any] = {"id": "ar_" + "0" * 32, "service": "svc", "method": "POST", "path": "/echo",
                               "headers": [], "body": b"hello", "body_file": None, "body_size": 5, "access_key": "AK"}
        out = sender.send(row, gateway)
    finally:
        sender.close()
    with pytest.raises(TimeoutError):
        proxy.accept()[0].close()  # nothing came to the proxy
    proxy.close()
    assert (out.kind, out.status, out.body) == ("result", 200, b"hello"), out.error
    assert _Gateway.seen == ["internal-token"]


class _Gzipping(BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_POST(self) -> None:
        import gzip

        self.asked.append(self.headers.get("accept-encoding", ""))
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = b"plain text " * 100
        gz = "gzip" in self.headers.get("accept-encoding", "")
        if gz:
            body = gzip.compress(body)
        self.send_response(200)
        if gz:
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_result_is_stored_as_the_app_sent_it_for_what_the_client_asked(tmp_path: Path) -> None:
    import gzip

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gzipping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s = settings.load({"data_dir": str(tmp_path), "asyncq.request_timeout_s": 3, "gateway.tls": False}, env={})
    sender = Sender(s, b"internal-token")
    try:
        row: dict[str, Any] = {"id": "ar_" + "1" * 32, "service": "svc", "method": "POST", "path": "/p",
                               "headers": [], "body": b"x", "body_file": None, "body_size": 1, "access_key": ""}
        plain = sender.send(row, server.server_address[1])  # the client asked for no encoding: none is asked
        zipped = sender.send({**row, "headers": [["Accept-Encoding", "gzip"]]}, server.server_address[1])
    finally:
        sender.close()
        server.shutdown()
        server.server_close()
    assert _Gzipping.asked == ["identity", "gzip"]
    assert plain.body == b"plain text " * 100 and not any(k == "content-encoding" for k, _ in plain.headers)
    assert ["content-encoding", "gzip"] in zipped.headers and gzip.decompress(zipped.body) == b"plain text " * 100
