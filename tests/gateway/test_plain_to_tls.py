"""Plain http:// to a TLS port gets a 400 saying the port speaks HTTPS (not an empty reply); TLS still works."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.harness import route, snapshot
from tests.gateway.test_proxy import _tls
from tests.live import free_port


def test_plain_http_to_the_tls_port_is_told_to_use_https(replicas: Any, gateway: Any, tmp_path: Path) -> None:
    rep = replicas("a")
    port = free_port()
    ctx, cert = _tls(tmp_path)
    gateway(snapshot(1, route("svc", [rep.upstream()], port, auth=False)), ssl_context=ctx)
    resp = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=10)
    assert resp.status_code == 400 and resp.headers["connection"] == "close"
    body = resp.json()
    assert body["code"] == "PlainHttpToHttpsPort" and body["request_id"]
    assert "this port speaks HTTPS" in body["message"] and f"https://…:{port}/" in body["message"]
    assert rep.hits == []  # nothing reached the app
    # a raw client that sends a whole request and reads to the end gets the answer, not a reset
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 400 ")
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["code"] == "PlainHttpToHttpsPort"
    # HTTPS on the same port is unaffected, and a client that sends nothing is closed quietly
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as c:
        assert c.get(f"https://127.0.0.1:{port}/ok").json()["path"] == "/ok"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.shutdown(socket.SHUT_WR)
        assert s.recv(100) == b""
