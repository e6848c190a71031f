"""WebSocket (and any ``Upgrade``) through the gateway: a real ``websockets`` server as the replica
and a real ``websockets`` client, over plain HTTP and TLS, with the handshake signed."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from arkserve.auth.signing import sign_headers
from arkserve.domain.routing import RoutingSnapshot, Upstream
from arkserve.sdk.auth import websocket_headers
from tests.gateway.harness import SK, RawReplica, route, snapshot
from tests.gateway.test_proxy import _tls
from tests.live import free_port


def _handler(ws: ServerConnection) -> None:
    """Says which headers the handshake carried, then echoes; 'bye' makes the server close."""
    req = ws.request
    assert req is not None
    ws.send(json.dumps({"path": req.path, "access_key": req.headers.get("x-ark-access-key"),
                        "request_id": req.headers.get("x-request-id"),
                        "authorization": req.headers.get("authorization")}))
    for msg in ws:
        if msg == "bye":
            ws.close(1000, "bye")
            return
        ws.send(msg)


@pytest.fixture
def ws_replica() -> Iterator[Upstream]:
    server: Server = serve(_handler, "127.0.0.1", 0, max_size=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Upstream("ws0", "127.0.0.1", int(server.socket.getsockname()[1]))
    server.shutdown()


def _signed(port: int, path: str = "/ws") -> dict[str, str]:
    return sign_headers(method="GET", url=path, host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                        body=None, now=time.time())


def _wait(cond: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_signed_websocket_echoes_both_ways_and_is_logged(ws_replica: Upstream, gateway: Any, tmp_path: Path,
                                                           tls: bool) -> None:
    port = free_port()
    ctx, cert = _tls(tmp_path) if tls else (None, None)
    g = gateway(snapshot(1, route("chat", [ws_replica], port)), ssl_context=ctx)
    client_ssl = None
    if cert is not None:
        import ssl
        client_ssl = ssl.create_default_context(cafile=str(cert))
    uri = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/ws?room=1"
    big = os.urandom(2 << 20)  # 2 MB each way (random: permessage-deflate cannot shrink it), more than
    # any socket buffer holds, so backpressure comes into play
    with connect(uri, additional_headers=websocket_headers(uri, "AKOWNER", SK), ssl=client_ssl,
                 max_size=None) as ws:
        hello = json.loads(ws.recv())
        assert hello["path"] == "/ws?room=1" and hello["access_key"] == "AKOWNER"
        assert hello["authorization"] is None  # the signature is not handed to the replica
        assert ws.response is not None and ws.response.headers["x-request-id"] == hello["request_id"]
        for i in range(20):
            ws.send(f"message {i}")
            assert ws.recv() == f"message {i}"
        ws.send(big)
        assert ws.recv() == big
    _wait(lambda: len(g.sink.records) == 1)
    rec = g.sink.records[0]
    assert (rec.status, rec.replica, rec.access_key, rec.path) == (101, "ws0", "AKOWNER", "/ws?room=1")
    assert rec.bytes_in > len(big) and rec.bytes_out > len(big)
    assert rec.request_id == hello["request_id"]
    metrics = g.gw.core.metrics
    assert metrics.requests[("chat", "ws0", "1xx")] == 1
    assert "chat" not in metrics.hist  # a tunnel's life is not a response time


def test_an_unsigned_handshake_is_refused_before_the_replica(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("chat", [ws_replica], port)))
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://127.0.0.1:{port}/ws", open_timeout=5)
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body or b"{}")["code"] == "MissingAuthorization"
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].status == 401 and g.sink.records[0].replica == ""


def test_a_public_service_takes_websockets_without_a_signature(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("chat", [ws_replica], port, auth=False)))
    with connect(f"ws://127.0.0.1:{port}/public", open_timeout=5) as ws:
        assert json.loads(ws.recv())["path"] == "/public"
        ws.send("hi")
        assert ws.recv() == "hi"


def test_the_replica_closing_closes_the_client_and_the_record_is_written(ws_replica: Upstream,
                                                                         gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("chat", [ws_replica], port)))
    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=_signed(port)) as ws:
        ws.recv()
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.reason == "bye"
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].status == 101
    _wait(lambda: not g.gw.core.connections)  # nothing left behind in the gateway


def test_an_idle_tunnel_is_closed_after_tunnel_idle_s(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("chat", [ws_replica], port)), tunnel_idle_s=0.5)
    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=_signed(port), ping_interval=None) as ws:
        ws.recv()
        ws.send("still here")  # traffic keeps it open
        assert ws.recv() == "still here"
        t0 = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert 0.3 < time.monotonic() - t0 < 3
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].status == 101


def test_a_replica_that_refuses_the_upgrade_answers_as_http_and_the_connection_closes(replicas: Any,
                                                                                       gateway: Any) -> None:
    r1 = replicas("r1")  # a plain HTTP server: answers 200 to the handshake
    port = free_port()
    gateway(snapshot(1, route("plain", [r1.upstream()], port)))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        h = _signed(port, "/x")
        signing = "".join(f"{k}: {v}\r\n" for k, v in h.items())
        s.sendall((f"GET /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   f"{signing}\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break  # the gateway closed the connection after the refusal
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nconnection: close" in head.lower()
    assert json.loads(body)["replica"] == "r1"
    assert r1.hits == ["/x"]


class RawUpgradeReplica(RawReplica):
    """Answers any request with 101 and then echoes raw bytes, upper-cased; records what it got."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += conn.recv(65536)
            head, _, rest = buf.partition(b"\r\n\r\n")
            self.heads.append(head)
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n"
                         + rest.upper())
            while data := conn.recv(65536):
                conn.sendall(data.upper())


@pytest.fixture
def raw_replica() -> Iterator[RawUpgradeReplica]:
    rep = RawUpgradeReplica()
    yield rep
    rep.close()


def test_any_upgrade_is_tunnelled_including_bytes_sent_before_the_101(raw_replica: RawUpgradeReplica,
                                                                      gateway: Any) -> None:
    rep = raw_replica
    port = free_port()
    g = gateway(snapshot(1, route("raw", [Upstream("raw0", "127.0.0.1", rep.port)], port)))
    h = _signed(port, "/shout")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        signing = "".join(f"{k}: {v}\r\n" for k, v in h.items())
        s.sendall((f"GET /shout HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: keep-alive, Upgrade\r\n"
                   f"Upgrade: shout\r\n{signing}\r\nearly bytes").encode())
        data = b""
        while b"EARLY BYTES" not in data:
            data += s.recv(65536)
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 101") and b"\r\nupgrade: shout" in head
        assert b"\r\nconnection: upgrade" in head and b"\r\nx-request-id: " in head
        s.sendall(b"and more")
        got = b""
        while got != b"AND MORE":
            got += s.recv(65536)
    head_up = rep.heads[0].lower()
    assert b"\r\nconnection: upgrade\r\n" in head_up + b"\r\n" and b"\r\nupgrade: shout" in head_up
    assert b"authorization:" not in head_up and b"x-ark-access-key: akowner" in head_up
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].bytes_in == len(b"early bytes") + len(b"and more")


def test_stopping_the_gateway_closes_open_tunnels_at_once(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("chat", [ws_replica], port)), shutdown_grace_s=20)
    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=_signed(port)) as ws:
        ws.recv()
        t0 = time.monotonic()
        g.call(g.gw.stop(grace_s=20))
        assert time.monotonic() - t0 < 10  # not the 20 s grace: a WebSocket never ends by itself
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_connect_is_refused(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("chat", [ws_replica], port, auth=False)))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\nSSH-2.0-x\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400") and b'"BadRequest"' in data


def test_disabling_the_key_closes_its_open_websockets(ws_replica: Upstream, gateway: Any) -> None:
    port = free_port()
    chat = route("chat", [ws_replica], port)
    g = gateway(snapshot(1, chat))
    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=_signed(port)) as ws:
        ws.recv()
        g.publish(snapshot(2, chat))  # a new snapshot that still allows the key: the tunnel stays
        ws.send("still allowed")
        assert ws.recv() == "still allowed"
        keys = dict(g.source.load().keys)
        del keys["AKOWNER"]  # the key was disabled or deleted
        g.publish(RoutingSnapshot(version=3, services={"chat": chat}, keys=keys))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].status == 101


def test_turning_auth_on_closes_the_unsigned_websockets_of_a_public_service(ws_replica: Upstream,
                                                                            gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("chat", [ws_replica], port, auth=False)))
    with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        ws.recv()
        g.publish(snapshot(2, route("chat", [ws_replica], port, auth=True)))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


def test_a_101_nobody_asked_for_is_a_502(raw_replica: RawUpgradeReplica, gateway: Any) -> None:
    rep = raw_replica
    port = free_port()
    g = gateway(snapshot(1, route("raw", [Upstream("raw0", "127.0.0.1", rep.port)], port, auth=False)))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 502") and b"switched protocols" in data
    _wait(lambda: len(g.sink.records) == 1)
    assert g.sink.records[0].status == 502
