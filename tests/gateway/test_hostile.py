"""Hostile and malformed input over raw sockets: each gets its 4xx, and others keep being served."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import Any

import httpx
import pytest

from arkserve.domain.routing import Upstream
from tests.gateway.harness import RawReplica, read_answers, route, snapshot
from tests.live import free_port


def exchange(port: int, data: bytes, *, pause: float = 0.0, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(ConnectionError):
            s.sendall(data)
        if pause:
            time.sleep(pause)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
    return out


def status_and_code(raw: bytes) -> tuple[int, str]:
    """The status and the error code of a gateway error answer (which must be the full JSON error body)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    err = json.loads(body)
    assert err["message"] and err["request_id"], err
    return status, err["code"]


H = b"Host: 127.0.0.1\r\n"
CASES = [
    ("cl_and_te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "BadRequest"),
    ("two_cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, "BadRequest"),
    ("bad_cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, "BadRequest"),
    ("cl_list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc", 400, "BadRequest"),
    ("te_gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "BadRequest"),
    ("nul", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, "BadRequest"),
    ("bare_cr", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, "BadRequest"),
    # no LF inside a header value either (the verified-signature cache joins values with LF)
    ("bare_lf", b"GET / HTTP/1.1\r\n" + H + b"Authorization: a\nb\r\n\r\n", 400, "BadRequest"),
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"date: a\r\n b\r\n\r\n", 400, "BadRequest"),
    ("bad_host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "BadHost"),
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "BadHost"),
    ("no_host", b"GET / HTTP/1.1\r\n\r\n", 400, "BadHost"),
    ("absolute_uri", b"GET http://evil/ HTTP/1.1\r\n" + H + b"\r\n", 400, "BadRequest"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, "BadRequest"),
    ("big_headers", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "HeadersTooLarge"),
    ("many_headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 60) for i in range(2000))
     + b"\r\n", 431, "HeadersTooLarge"),
    ("body_too_large", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 2000000\r\n\r\n", 413, "PayloadTooLarge"),
    # two Transfer-Encoding headers are one list (RFC 9112 6.1): "gzip" then "chunked" is "gzip, chunked"
    ("two_te", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400, "BadRequest"),
    # trailers (after the last chunk) count with the head against max_header_bytes (64 KiB): many lines, and one
    # line that never ends (llhttp's wrapper would collect it in memory until it did)
    ("many_trailers", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
     + b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 60) for i in range(2000)) + b"\r\n", 431, "HeadersTooLarge"),
    ("endless_trailer", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
     + b"X-T: " + b"v" * 300_000, 431, "HeadersTooLarge"),
]


@pytest.fixture
def open_gateway(replicas: Any, gateway: Any) -> Any:
    a = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("open", [a.upstream()], port, auth=False)), max_body_bytes=1_000_000,
                header_timeout_s=0.5)
    g.port = port
    return g


@pytest.mark.parametrize(("name", "data", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_rejected(open_gateway: Any, name: str, data: bytes, status: int, code: str) -> None:
    port = open_gateway.port
    with httpx.Client() as good:  # a well-behaved client, connected before and used after
        assert good.get(f"http://127.0.0.1:{port}/before").status_code == 200
        assert status_and_code(exchange(port, data)) == (status, code)
        assert good.get(f"http://127.0.0.1:{port}/after").status_code == 200


def test_chunked_body_over_limit_is_413(open_gateway: Any) -> None:
    port = open_gateway.port
    chunk = b"%x\r\n%s\r\n" % (100_000, b"z" * 100_000)
    raw = exchange(port, b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 12)
    assert status_and_code(raw) == (413, "PayloadTooLarge")


def test_an_error_of_a_request_waiting_behind_another_is_answered_not_aborted(replicas: Any, gateway: Any) -> None:
    """A pipelined request whose body goes over the limit while the one before it is still being answered gets
    its 413 once its turn comes (the connection was cut before: its answer was taken for already started). The
    limit is under what a waiting request buffers (256 KiB), or its body would wait unread."""
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)), max_body_bytes=50_000)
    chunk = b"%x\r\n%s\r\n" % (20_000, b"z" * 20_000)
    data = (b"GET /slow=0.5 HTTP/1.1\r\n" + H + b"\r\n"
            + b"POST /second HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 4 + b"0\r\n\r\n")
    raw = exchange(port, data)
    first, sep, rest = raw.partition(b"HTTP/1.1 413")
    assert first.startswith(b"HTTP/1.1 200") and b'"path": "/slow=0.5"' in first
    assert sep, raw[:300]
    assert status_and_code(sep + rest) == (413, "PayloadTooLarge")


def test_slow_headers_get_408_without_blocking_others(open_gateway: Any) -> None:
    port = open_gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
        t0 = time.monotonic()
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 200
        assert time.monotonic() - t0 < 0.5
        out = b""
        while chunk := slow.recv(65536):
            out += chunk
        assert status_and_code(out) == (408, "RequestTimeout")


def test_idle_keepalive_connection_is_closed(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    port = free_port()
    gateway(snapshot(1, route("open", [a.upstream()], port, auth=False)), idle_timeout_s=0.3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        first = b""
        while not first.endswith(b"}"):
            first += s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        s.settimeout(3)
        assert s.recv(65536) == b""  # closed by the gateway after the idle timeout


def test_pipelined_requests_answer_in_order(open_gateway: Any) -> None:
    port = open_gateway.port
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\n" % i + H + b"\r\n" for i in range(5))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(reqs + b"GET /last HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    paths = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["path"]
             for part in out.split(b"HTTP/1.1 200")[1:]]
    assert paths == ["/p0", "/p1", "/p2", "/p3", "/p4", "/last"]


def test_http10_and_head(open_gateway: Any) -> None:
    port = open_gateway.port
    raw = exchange(port, b"GET /ten HTTP/1.0\r\n" + H + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and json.loads(raw.split(b"\r\n\r\n", 1)[1])["path"] == "/ten"
    with httpx.Client() as c:
        r = c.head(f"http://127.0.0.1:{port}/h")
        assert r.status_code == 200 and r.content == b""
        assert c.get(f"http://127.0.0.1:{port}/after-head").status_code == 200


def test_http10_keep_alive_is_kept_and_said(open_gateway: Any) -> None:
    """An HTTP/1.0 client keeps its connection only when told so (``connection: keep-alive``); a 1.1 client, and a
    1.0 client that did not ask, are not told."""
    port = open_gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for path in (b"/one", b"/two"):
            s.sendall(b"GET " + path + b" HTTP/1.0\r\n" + H + b"Connection: Keep-Alive\r\n\r\n")
            head, _, body = s.recv(65536).partition(b"\r\n\r\n")
            assert b"\r\nconnection: keep-alive" in head.lower(), head
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += s.recv(65536)
            assert json.loads(body)["path"] == path.decode()
    for request in (b"GET /eleven HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n",
                    b"GET /ten HTTP/1.0\r\n" + H + b"\r\n"):
        head = exchange(port, request).partition(b"\r\n\r\n")[0].lower()
        assert b"\r\nconnection: close" in head and b"keep-alive" not in head, head


def test_expect_100_continue(open_gateway: Any) -> None:
    port = open_gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"hello")
        out = b""
        while not out.endswith(b"}"):
            out += s.recv(65536)
    assert out.startswith(b"HTTP/1.1 200") and b'"length": 5' in out


def test_trailers_are_dropped_and_the_connection_goes_on(open_gateway: Any) -> None:
    """Small trailers pass the limit but are not forwarded (the replica gets its own last chunk, with none); the
    connection serves the next request. A chunk whose data comes in a later read, larger than the head limit, is
    body, not trailers; so is a body of many tiny chunks."""
    port = open_gateway.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /t HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                  b"X-Trailer: 1\r\nX-Other: 2\r\n\r\n")
        s.sendall(b"POST /big-chunk HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % 200_000)
        time.sleep(0.2)  # the gateway has read the chunk's size line alone
        s.sendall(b"z" * 200_000 + b"\r\n0\r\n\r\n")
        s.sendall(b"POST /tiny-chunks HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
                  + b"1\r\nz\r\n" * 30_000 + b"0\r\n\r\n")
        s.sendall(b"GET /after HTTP/1.1\r\n" + H + b"\r\n")
        answers = read_answers(s, 4)
    assert [status for status, _ in answers] == [200] * 4, answers
    infos = [json.loads(body) for _, body in answers]
    assert [(i["path"], i["length"]) for i in infos] == [("/t", 3), ("/big-chunk", 200_000),
                                                       ("/tiny-chunks", 30_000), ("/after", 0)]
    assert "x-trailer" not in infos[0]["headers"] and "x-other" not in infos[0]["headers"]


class HugeHeadReplica(RawReplica):
    """Answers each request with a response head of ``size`` bytes, written in ``piece``-byte writes (then, if
    still connected, a 2-byte body); ``requests`` counts the requests it read, ``cut`` whether its writes failed
    (the gateway closed the connection)."""

    def __init__(self, size: int, piece: int) -> None:
        self.size, self.piece = size, piece
        self.requests = 0
        self.cut = False
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            if self.read_head(conn, b"") is None:
                return
            self.requests += 1
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            line = b"X-H: " + b"v" * 90 + b"\r\n"
            head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" + line * ((self.size - 40) // len(line)) + b"\r\n"
            try:
                for i in range(0, len(head), self.piece):
                    conn.sendall(head[i:i + self.piece])
                    if self.piece < 65536:
                        time.sleep(0.0005)
                conn.sendall(b"ok")
                time.sleep(0.5)
            except OSError:
                self.cut = True


@pytest.mark.parametrize(("size", "piece"), [(10_000_000, 65536), (100_000, 1_000_000), (100_000, 1000)],
                         ids=["endless", "one_write", "trickled"])
def test_a_response_head_over_64k_is_a_502(gateway: Any, size: int, piece: int) -> None:
    """A replica's response head beyond 64 KiB is not collected: the upstream connection is closed and the client
    gets 502 UpstreamError at once, without a retry on another connection (a GET would otherwise be sent again)."""
    rep = HugeHeadReplica(size, piece)
    port = free_port()
    g = gateway(snapshot(1, route("open", [Upstream("r", "127.0.0.1", rep.port)], port, auth=False)))
    try:
        t0 = time.monotonic()
        raw = exchange(port, b"GET /h HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        assert status_and_code(raw) == (502, "UpstreamError")
        assert "response head exceeds 65536 bytes" in json.loads(raw.partition(b"\r\n\r\n")[2])["message"]
        assert time.monotonic() - t0 < 3
        assert rep.requests == 1
        deadline = time.monotonic() + 5
        while size > 1_000_000 and not rep.cut and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rep.cut or size < 1_000_000  # its connection closed long before 10 MB
        metrics = httpx.get(f"http://127.0.0.1:{g.gw.admin_port}/metrics").text
        assert 'arkserve_gateway_upstream_errors_total{service="open",kind="protocol"} 1' in metrics
    finally:
        rep.close()


def test_a_response_head_under_64k_in_many_reads_passes(gateway: Any) -> None:
    rep = HugeHeadReplica(60_000, 700)
    port = free_port()
    gateway(snapshot(1, route("open", [Upstream("r", "127.0.0.1", rep.port)], port, auth=False)))
    try:
        raw = exchange(port, b"GET /h HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.count(b"\r\nX-H: ") > 500 and body == b"ok"
    finally:
        rep.close()
