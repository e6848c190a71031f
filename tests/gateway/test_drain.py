"""Draining at shutdown: no new connections, in-flight requests finish, an open keep-alive connection may
send one more request (answered with ``Connection: close``), and the admin /healthz says ``draining``."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest

from tests.gateway.harness import route, snapshot
from tests.live import free_port


def _request(sock: socket.socket, path: str, host: str = "svc") -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())


def _response(sock: socket.socket, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a response body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _admin_health(port: int) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        _request(s, "/healthz", "127.0.0.1")
        status, _headers, body = _response(s)
    return status, json.loads(body)


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_draining_finishes_in_flight_serves_open_connections_and_reports_draining(replicas: Any,
                                                                                   gateway: Any) -> None:
    rep = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [rep.upstream()], port, auth=False)), drain_idle_s=5.0)
    admin = g.gw.admin_port
    assert _admin_health(admin)[0] == 200 and _admin_health(admin)[1]["status"] == "ok"
    idle = socket.create_connection(("127.0.0.1", port))
    busy = socket.create_connection(("127.0.0.1", port))
    try:
        _request(idle, "/first")
        assert _response(idle)[0] == 200  # now an idle keep-alive connection
        _request(busy, "/slow=2")
        _wait(lambda: "/slow=2" in rep.hits)
        stopping = asyncio.run_coroutine_threadsafe(g.gw.stop(grace_s=20), g.loop)
        _wait(lambda: _admin_health(admin)[0] == 503)
        assert _admin_health(admin)[1]["status"] == "draining"
        with pytest.raises(ConnectionRefusedError):  # the listener is closed: no new connections
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        _request(idle, "/one-more")  # an already-open keep-alive connection still gets an answer …
        status, headers, body = _response(idle)
        assert status == 200 and json.loads(body)["path"] == "/one-more"
        assert headers["connection"] == "close"  # … and is told to go away
        assert idle.recv(1) == b""
        status, headers, body = _response(busy)  # the in-flight request finishes
        assert status == 200 and json.loads(body)["path"] == "/slow=2" and headers["connection"] == "close"
        stopping.result(20)
        with pytest.raises(ConnectionRefusedError):  # drained: the admin listener is closed too
            _admin_health(admin)
    finally:
        idle.close()
        busy.close()


def test_a_forced_stop_ends_the_drain_at_once(replicas: Any, gateway: Any) -> None:
    rep = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [rep.upstream()], port, auth=False)))
    busy = socket.create_connection(("127.0.0.1", port))
    try:
        _request(busy, "/slow=30")
        _wait(lambda: "/slow=30" in rep.hits)
        force = asyncio.Event()
        t0 = time.monotonic()
        stopping = asyncio.run_coroutine_threadsafe(g.gw.stop(grace_s=60, force=force), g.loop)
        g.loop.call_soon_threadsafe(force.set)
        stopping.result(10)
        assert time.monotonic() - t0 < 5
        busy.settimeout(5)
        got = b""
        try:
            while chunk := busy.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        assert got == b""  # cut off, not answered
    finally:
        busy.close()
