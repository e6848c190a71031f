"""Unit tests of the HTTP helpers: request ids, Host, response-head filtering, error bodies."""

from __future__ import annotations

import json

import pytest

from arkserve.gateway.http import (
    CONSOLE_COOKIE,
    error_response,
    host_service,
    request_id,
    response_head,
    valid_host,
    without_console_cookie,
)


@pytest.mark.parametrize(("given", "kept"), [
    (b"abc-123_x.y", True), (b"a" * 128, True), (b"a" * 129, False), (b"", False),
    (b"has space", False), (b"semi;colon", False), (None, False), (b"\xff", False),
])
def test_request_id(given: bytes | None, kept: bool) -> None:
    rid = request_id(given)
    assert (rid == given) is kept
    assert 1 <= len(rid) <= 128


def test_generated_request_ids_are_unique() -> None:
    assert len({request_id(None) for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("host", "ok"), [
    (b"example.com", True), (b"127.0.0.1:8443", True), (b"[::1]:80", True), (b"a_b.com", False),
    (b"x y", False), (b"", False), (b"host:port", False), (b"h:123456", False), (b"-bad", False),
])
def test_valid_host(host: bytes, ok: bool) -> None:
    assert valid_host(host) is ok


@pytest.mark.parametrize(("host", "svc"), [
    (b"flowers.infer.example.com", "flowers"), (b"Flowers.Infer.Example.com:8443", "flowers"),
    (b"a.b.infer.example.com", None), (b"infer.example.com", None), (b"flowers.other.com", None),
])
def test_host_service(host: bytes, svc: str | None) -> None:
    assert host_service(host, b".infer.example.com") == svc


@pytest.mark.parametrize(("raw", "head", "has_len", "chunked"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2", b"HTTP/1.1 200 OK\r\nContent-Length: 2", True, False),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2", b"HTTP/1.1 200 OK\r\nContent-Length: 2",
     True, False),
    (b"HTTP/1.0 404 NF\r\nX-Request-ID: up\r\nA: b", b"HTTP/1.1 404 NF\r\nA: b", False, False),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nB: c",
     b"HTTP/1.1 200 OK\r\nB: c", False, True),
    (b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nTE: x\r\nUpgrade: h2c\r\nD: e", b"HTTP/1.1 200 OK\r\nD: e",
     False, False),
])
def test_response_head(raw: bytes, head: bytes, has_len: bool, chunked: bool) -> None:
    assert response_head(raw) == (head, has_len, chunked)


@pytest.mark.parametrize("cookie", [b"ark_session=OWNERS; Path=/; HttpOnly", b"\tark_session =OWNERS",
                                    b"=ark_session=OWNERS", b"x=1, ark_session=OWNERS", b"ARK_SESSION=x"])
def test_an_app_cannot_set_the_consoles_session_cookie(cookie: bytes) -> None:
    """Browsers let any port of a host set its cookies: an app's Set-Cookie naming the console's session (even as a
    nameless cookie's value, which browsers send back as ``ark_session=…``) never reaches the browser."""
    raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nSet-Cookie: " + cookie + b"\r\nContent-Length: 2"
    assert response_head(raw) == (b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\nContent-Length: 2", True, False)


@pytest.mark.parametrize(("value", "left"), [(b"ark_session=S", b""), (b"a=1; ark_session=S; b=2", b"a=1; b=2"),
                                             (b"a=1;ark_session=S", b"a=1"), (b"my_ark_session=1", b"my_ark_session=1"),
                                             (b"a=ark_session", b"a=ark_session"), (b"a=1", b"a=1")])
def test_the_consoles_session_is_taken_out_of_a_cookie_header(value: bytes, left: bytes) -> None:
    assert without_console_cookie(value) == left


def test_the_console_cookie_is_the_apis() -> None:
    from arkserve.api.security import SESSION_COOKIE

    assert SESSION_COOKIE.encode() == CONSOLE_COOKIE


def test_error_response_is_json_with_auth_headers() -> None:
    raw = error_response(401, "SignatureMismatch", "nope", b"rid-1", close=False)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 401 ")
    assert b"www-authenticate: HMAC-SHA256" in head and b"\r\ndate: " in head
    assert json.loads(body) == {"code": "SignatureMismatch", "message": "nope", "request_id": "rid-1"}
    raw = error_response(503, "NoReplicaAvailable", "busy", b"r", close=True, retry_after=1)
    assert b"retry-after: 1" in raw and b"connection: close" in raw and b"www-authenticate" not in raw
