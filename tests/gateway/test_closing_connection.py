"""Bytes a client sends behind a request after which the connection closes (a 400, a refusal before its body was
read) are not read as requests: they never reach a replica (RFC 9112 9.6; behind ``Connection: close`` llhttp itself
refuses them). Before, a signed
DELETE written behind an unsigned POST ran on the replica while the client saw only the POST's 401 and a closed
connection (and would send the DELETE again)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from arkserve.auth.signing import sign_headers
from tests.gateway.harness import SK, route, snapshot
from tests.gateway.test_hostile import exchange
from tests.live import free_port


def _signed(method: str, path: str, host: str) -> bytes:
    h = sign_headers(method=method, url=path, host=host, access_key="AKOWNER", secret_key=SK, body=b"",
                     now=time.time())
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items() if k.lower() != "host")


def _behind(port: int, first: bytes) -> bytes:
    host = f"127.0.0.1:{port}"
    return (first.replace(b"HOST", host.encode()) +
            b"DELETE /smuggled HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + _signed("DELETE", "/smuggled", host) +
            b"\r\n")


@pytest.mark.parametrize(("first", "status"), [
    (b"GET http://evil/ HTTP/1.1\r\nHost: HOST\r\n\r\n", 400),  # absolute form
    (b"POST /a HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET /a HTTP/1.1\r\nHost: HOST\r\nHost: HOST\r\n\r\n", 400),  # two Hosts
    (b"POST /unsigned HTTP/1.1\r\nHost: HOST\r\nContent-Length: 2\r\n\r\nhi", 401),  # refused, body unread
])
def test_nothing_behind_a_request_that_closes_the_connection_reaches_the_replica(
        replicas: Any, gateway: Any, first: bytes, status: int) -> None:
    a = replicas("a")
    port = free_port()
    gw = gateway(snapshot(1, route("svc", [a.upstream()], port)))
    host = f"127.0.0.1:{port}"
    warm = (b"GET /warm HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n" +
            _signed("GET", "/warm", host) + b"\r\n")
    exchange(port, warm)  # a pooled upstream connection, so a request behind would be sent at once
    raw = exchange(port, _behind(port, first), timeout=2)
    assert raw.startswith(f"HTTP/1.1 {status}".encode()) and raw.count(b"HTTP/1.1 ") == 1, raw[:300]
    # the gateway records every request it answers or sends on: wait until the first one is recorded
    deadline = time.monotonic() + 5
    while len(gw.sink.records) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "/smuggled" not in a.hits and all(r.path != "/smuggled" for r in gw.sink.records)


def test_a_signed_request_behind_a_good_one_still_runs(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    port = free_port()
    gateway(snapshot(1, route("svc", [a.upstream()], port)))
    host = f"127.0.0.1:{port}"
    first = b"GET /one HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + _signed("GET", "/one", host) + b"\r\n"
    raw = exchange(port, _behind(port, first), timeout=1)
    assert raw.count(b"HTTP/1.1 200") == 2 and a.hits[-2:] == ["/one", "/smuggled"]
