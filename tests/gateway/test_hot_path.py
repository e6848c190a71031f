"""What the hot path remembers between requests must never change an answer: the Host checks a connection
passed once (request.py) and the filtered response heads (http.py), over real sockets and a real replica."""

from __future__ import annotations

import json
import socket
from typing import Any

from arkserve.gateway.http import _HEADS, _HEADS_MAX, filter_head, response_head
from tests.gateway.harness import read_answers, route, snapshot
from tests.live import free_port


def _answers(port: int, data: bytes, count: int) -> list[tuple[int, bytes]]:
    """Send ``data`` (pipelined requests) on one connection; the status and body of ``count`` answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        return read_answers(s, count)


def test_a_bad_host_after_a_good_one_on_the_same_connection_is_refused(replicas: Any, gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    good = b"GET /one HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    (s1, b1), (s2, b2) = _answers(port, good + b"GET /two HTTP/1.1\r\nHost: a b\r\n\r\n", 2)
    assert s1 == 200 and json.loads(b1)["path"] == "/one"
    assert (s2, json.loads(b2)["code"]) == (400, "BadHost")


def test_a_host_naming_another_port_after_a_good_one_is_refused(replicas: Any, gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("signed", [replicas("a").upstream()], port)))
    mine = b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
    other = b"GET /b HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (port + 1)
    (s1, b1), (s2, b2), (s3, b3) = _answers(port, mine + other + mine, 3)
    assert s1 == s2 == s3 == 401
    codes = [json.loads(b)["code"] for b in (b1, b2, b3)]
    assert codes[1] == "HostMismatch" and codes[0] == codes[2] != "HostMismatch", codes


def test_response_heads_are_remembered_exactly_and_bounded() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 21:00:00 GMT\r\nContent-Length: 2\r\n"
           b"Connection: keep-alive\r\nX-Seen: %d")
    want = (b"HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 21:00:00 GMT\r\nContent-Length: 2\r\nX-Seen: 1", True, False)
    assert filter_head(raw % 1) == want
    first = response_head(raw % 1)
    assert first == want  # filtered and remembered
    # remembered: the same head object again, not filtered anew (compiled, the tuple around it is built anew)
    assert response_head(raw % 1)[0] is first[0] is _HEADS[raw % 1][0]
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Seen: 1"
    assert response_head(chunked) == (b"HTTP/1.1 200 OK\r\nX-Seen: 1", False, True)
    for i in range(3 * _HEADS_MAX):
        assert response_head(raw % i)[0].endswith(b"X-Seen: %d" % i)
        assert len(_HEADS) <= _HEADS_MAX
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 4096
    assert response_head(big) == (big, False, False) and big not in _HEADS
