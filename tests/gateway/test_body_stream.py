"""A Content-Length request body on a kept-alive connection bypasses the parser (``ClientConnection.left``): it is
counted and handed to the replica as the chunks the client sent, not copied piece by piece by llhttp. The framing
must stay exact: pipelined requests with bodies, bodies over many reads, heads cut anywhere, a client that sends
more than its Content-Length, a body cut short, signed payloads (spooled) and the paths the parser keeps."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arkserve.auth.signing import sign_headers
from arkserve.domain.routing import ServiceRoute, Upstream
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.core import Core
from arkserve.gateway.proxy import _SPLIT, ClientConnection
from arkserve.gateway.requestlog import MemorySink
from arkserve.gateway.upstream import UpstreamConnection
from tests.gateway.harness import SK, read_answers, route, snapshot
from tests.live import free_port

H = b"Host: 127.0.0.1\r\n"


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (path.encode(), H, extra, len(body), body)


def answers(s: socket.socket, count: int) -> list[tuple[int, dict[str, Any]]]:
    """The next ``count`` answers on ``s``: status and JSON body."""
    return [(status, json.loads(body)) for status, body in read_answers(s, count)]


def until_closed(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def received(info: dict[str, Any], body: bytes) -> bool:
    return bool(info["length"] == len(body) and info["sha256"] == hashlib.sha256(body).hexdigest())


@pytest.fixture
def open_port(replicas: Any, gateway: Any) -> int:
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)), body_timeout_s=0.5)
    return port


def test_pipelined_requests_with_bodies_in_one_write(open_port: int) -> None:
    bodies = [bytes([i]) * n for i, n in enumerate((100_000, 3, _SPLIT + 1, 70_000))]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (bodies[0][:30_000], bodies[3][:20_000])) + b"0\r\n\r\n"
    data = (post("/0", bodies[0]) + b"GET /g HTTP/1.1\r\n" + H + b"\r\n" + post("/1", bodies[1]) + post("/2", bodies[2])
            + b"POST /c HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + chunked  # the parser's
            + post("/3", bodies[3]) + b"GET /last HTTP/1.1\r\n" + H + b"\r\n")
    with socket.create_connection(("127.0.0.1", open_port), timeout=5) as s:
        s.sendall(data)
        got = answers(s, 7)
    assert [a[0] for a in got] == [200] * 7
    assert [a[1]["path"] for a in got] == ["/0", "/g", "/1", "/2", "/c", "/3", "/last"]
    assert all(received(got[i][1], b) for i, b in zip((0, 2, 3, 5), bodies, strict=True))
    assert received(got[4][1], bodies[0][:30_000] + bodies[3][:20_000])
    assert got[1][1]["length"] == got[6][1]["length"] == 0


@pytest.mark.parametrize("step", [1, 7, 1000, 65536])
def test_a_body_over_many_reads_and_a_head_cut_anywhere(open_port: int, step: int) -> None:
    """Each piece is sent after the answer to nothing (no waiting): the reads the gateway sees vary, the bytes the
    replica gets must not. With ``step`` 1 the head arrives a byte at a time, the body too (the first 2 KB)."""
    body = bytes(range(256)) * 400
    with socket.create_connection(("127.0.0.1", open_port), timeout=10) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for round_ in range(2):  # the second request on the same connection: the parser was replaced in between
            data = post(f"/r{round_}", body)
            cut = len(data) - len(body) + 2048 if step == 1 else len(data)
            for i in range(0, cut, step):
                s.sendall(data[i:i + step])
            s.sendall(data[cut:])
            ((status, info),) = answers(s, 1)
            assert status == 200 and info["path"] == f"/r{round_}" and received(info, body)


def test_more_than_content_length_is_the_next_request(open_port: int) -> None:
    body = b"b" * 40_000
    with socket.create_connection(("127.0.0.1", open_port), timeout=5) as s:
        s.sendall(post("/first", body) + b"GET /next HTTP/1.1\r\n" + H + b"\r\n")
        (s1, a1), (s2, a2) = answers(s, 2)
        assert (s1, a1["path"], s2, a2["path"]) == (200, "/first", 200, "/next") and received(a1, body)
    with socket.create_connection(("127.0.0.1", open_port), timeout=5) as s:
        s.sendall(post("/first", body) + b"not a request\r\n\r\n")
        ((s1, a1),) = answers(s, 1)
        assert s1 == 200 and received(a1, body)
        assert b"HTTP/1.1 200" not in until_closed(s)  # what follows is no request: the connection ends


def test_a_body_cut_short(replicas: Any, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)), body_timeout_s=0.3)
    head = post("/stalls", b"x" * 100_000)[:-50_000]  # the head and half the body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head)
        out = until_closed(s)  # the body stalls: 408 once body_timeout_s has passed
    assert out.startswith(b"HTTP/1.1 408") and b"RequestTimeout" in out
    more = b"GET /unused HTTP/1.1\r\n" + H + b"\r\n"  # body bytes, not a request
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(post("/gone", b"y" * 100_000)[:-30_000])
        s.sendall(more)
    deadline = time.monotonic() + 5
    while not any(r.path == "/gone" for r in g.sink.records) and time.monotonic() < deadline:
        time.sleep(0.01)
    rec = next(r for r in g.sink.records if r.path == "/gone")
    assert rec.status == 499 and rec.bytes_in == 70_000 + len(more)  # the client left before its body was complete


def test_nothing_after_a_request_that_closes_its_connection_is_read(replicas: Any, gateway: Any) -> None:
    """A request that closes its connection keeps the parser on its body: llhttp refuses data after it, where a
    fresh parser would read it as another request (never answered, logged as the client's 499)."""
    port = free_port()
    g = gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    body = b"c" * 30_000
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(post("/close", body, b"Connection: close\r\n") + b"GET /after HTTP/1.1\r\n" + H + b"\r\n")
        out = until_closed(s)
    assert out.startswith(b"HTTP/1.1 200") and b'"/close"' in out and b'"/after"' not in out
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # the first connection is gone by then
        s.sendall(b"GET /later HTTP/1.1\r\n" + H + b"\r\n")
        assert answers(s, 1)[0][0] == 200
    deadline = time.monotonic() + 5
    while not any(r.path == "/later" for r in g.sink.records) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.path for r in g.sink.records] == ["/close", "/later"]


def _signed(port: int, body: bytes, claimed: bytes | None) -> bytes:
    h = sign_headers(method="POST", url="/s", host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                     body=claimed, now=time.time())
    extra = "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()
    return b"POST /s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %d\r\n\r\n%s" % (port, extra, len(body), body)


def test_signed_and_unsigned_payloads_past_the_parser(replicas: Any, gateway: Any) -> None:
    """A signed payload is spooled and checked (the pieces past the parser are hashed too), an unsigned one
    streams; a claim that does not match the body is still refused."""
    port = free_port()
    gateway(snapshot(1, route("signed", [replicas("a").upstream()], port)))
    body = bytes(range(256)) * 300
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(_signed(port, body, body) + _signed(port, body, None))
        (s1, a1), (s2, a2) = answers(s, 2)
        assert s1 == s2 == 200 and received(a1, body) and received(a2, body)
        s.sendall(_signed(port, body, body[:-1] + b"!"))
        ((s3, a3),) = answers(s, 1)
    assert (s3, a3["code"]) == (401, "ContentHashMismatch")


class _Recorder:
    """What a socket transport would be handed, kept as given (the objects, not their bytes)."""

    def __init__(self) -> None:
        self.writes: list[Any] = []

    def write(self, data: Any) -> None:
        self.writes.append(data)

    def writelines(self, parts: Any) -> None:
        self.writes.extend(parts)

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def test_the_body_reaches_the_replica_uncopied() -> None:
    """The chunks the client sent are what goes to the replica: a whole chunk as the same object, the body part of
    a chunk that also holds the head (or the next request) as a view of it. With the parser framing the body,
    each piece would be a new bytes object (llhttp's on_body copies)."""
    asyncio.run(_uncopied())


async def _uncopied() -> None:
    up_addr = ("127.0.0.1", 29999)
    r = ServiceRoute(name="s", owner_id=1, auth=False, upstreams=(Upstream("r0", *up_addr),), gateway_port=1)
    core = Core(GatewayConfig(admin_port=-1), MemorySink())
    core.apply(snapshot(1, r))
    conn = ClientConnection(core, 1, tls=False)
    conn.connection_made(_Recorder())  # type: ignore[arg-type]
    up = UpstreamConnection(core.upstreams, up_addr)
    up_t = _Recorder()
    up.connection_made(up_t)  # type: ignore[arg-type]
    core.upstreams.put(up)
    body = bytes(range(256)) * 400
    first = post("/a", body)[:-60_000]
    middle = body[-60_000:-20_000]
    last = body[-20_000:] + b"GET /b HTTP/1.1\r\n" + H + b"\r\n"
    for chunk in (first, middle, last):
        conn.data_received(chunk)
    sent = up_t.writes[1:]  # after the head
    assert b"".join(sent) == body
    assert isinstance(sent[0], memoryview) and sent[0].obj is first
    assert sent[1] is middle
    assert isinstance(sent[2], memoryview) and sent[2].obj is last
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # /a answered: /b goes out next
    assert up_t.writes[-1].startswith(b"GET /b HTTP/1.1\r\n") and not conn.closed
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    # a small read with the head and the body's start: the parser takes that start (a copy), the rest bypasses it
    small = post("/c", body)[:-100_000]
    assert len(small) < _SPLIT
    start = len(up_t.writes)
    tail = body[-100_000:]
    conn.data_received(small)
    conn.data_received(tail)
    sent = up_t.writes[start + 1:]
    assert b"".join(sent) == body and sent[-1] is tail  # the 2,400 bytes the parser took, then the chunk itself
    up.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conn.data_received(b"GET /d HTTP/1.1\r\n" + H + b"\r\n")  # a fresh parser reads the next request
    assert up_t.writes[-1].startswith(b"GET /d HTTP/1.1\r\n") and not conn.closed


def test_the_inproc_benchmark_measures_an_unsigned_post() -> None:
    """``bench/gateway/inproc.py --unsigned`` adds the streamed POST (the case this change is measured by)."""
    bench = Path(__file__).resolve().parents[2] / "bench/gateway/inproc.py"
    res = subprocess.run([sys.executable, str(bench), "-n", "50", "--unsigned"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    times = dict(re.findall(r"^(.+?)\s+([\d.]+) us/request", res.stdout, re.M))
    assert float(times["POST 100KB signed"]) > float(times["POST 100KB unsigned"]) > 0  # no hash, no spool
