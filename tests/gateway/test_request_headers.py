"""Which client request headers reach the replica: names with "_", headers named in Connection, and what a
client says about earlier hops (Forwarded, X-Real-IP, X-Forwarded-Host, X-Forwarded-For)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from arkserve.domain.routing import Upstream
from arkserve.sdk.auth import ArkAuth
from tests.gateway.harness import SK, read_answers, route, snapshot
from tests.live import free_port


def replica_headers(port: int, request: bytes) -> dict[str, str]:
    """The headers the replica (``Replica``, which reports what it received) got for a raw ``request``."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        [(status, body)] = read_answers(s, 1)
    assert status == 200, body
    headers: dict[str, str] = json.loads(body)["headers"]
    return headers


@pytest.fixture
def wsgi_replica() -> Iterator[int]:
    """A stdlib WSGI server (``wsgiref``) answering the two environ variables an app would read the key from."""

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        body = json.dumps({k: environ.get(k) for k in ("HTTP_X_ARK_ACCESS_KEY", "HTTP_X_FORWARDED_FOR")}).encode()
        start("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
        return [body]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    srv = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_port
    srv.shutdown()
    srv.server_close()


def test_underscored_names_are_dropped_so_a_wsgi_app_cannot_be_told_another_caller(
        wsgi_replica: int, gateway: Any) -> None:
    """WSGI/CGI servers turn both X-Ark-Access-Key and X_Ark_Access_Key into HTTP_X_ARK_ACCESS_KEY: a name with
    "_" never reaches the replica (nginx's default), so the gateway's own header is the only source of it."""
    p_pub, p_sig = free_port(), free_port()
    up = [Upstream("w", "127.0.0.1", wsgi_replica)]
    gateway(snapshot(1, route("pub", up, p_pub, auth=False), route("sig", up, p_sig, auth=True)))
    forged = {"X_Ark_Access_Key": "AKADMIN", "X_Forwarded_For": "10.9.9.9"}
    r = httpx.get(f"http://127.0.0.1:{p_pub}/", headers=forged)
    assert r.json() == {"HTTP_X_ARK_ACCESS_KEY": None, "HTTP_X_FORWARDED_FOR": "127.0.0.1"}
    r = httpx.get(f"http://127.0.0.1:{p_sig}/", headers=forged, auth=ArkAuth("AKOWNER", SK))
    assert r.json() == {"HTTP_X_ARK_ACCESS_KEY": "AKOWNER", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}


def test_an_underscored_name_of_any_kind_is_dropped_and_others_pass(replicas: Any, gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    got = replica_headers(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nMy_Header: 1\r\nX-Request_Id: x\r\n"
                                b"My-Header: 2\r\nConnection: close\r\n\r\n")
    assert got["my-header"] == "2"
    assert not [k for k in got if "_" in k], got
    assert got["x-request-id"] != "x"


def test_headers_named_in_connection_are_hop_by_hop(replicas: Any, gateway: Any) -> None:
    """RFC 9110 7.6.1: a header the client's Connection header names is for this hop only (Host excepted: it
    names the service and was signed)."""
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    got = replica_headers(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Keep-Alive, X-Secret-Hop\r\n"
                                b"X-Secret-Hop: 1\r\nX-Kept: 2\r\nx-hop-two: 3\r\nConnection: x-HOP-two , Host\r\n"
                                b"\r\n")
    assert "x-secret-hop" not in got and "x-hop-two" not in got, got
    assert got["x-kept"] == "2" and got["host"] == "127.0.0.1" and "connection" not in got
    # the usual values strip nothing
    got = replica_headers(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\nX-Kept: 2\r\n\r\n")
    assert got["x-kept"] == "2"


RAW_FORWARDING = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nForwarded: for=10.0.0.1;host=admin.internal\r\n"
                  b"X-Real-IP: 10.0.0.1\r\nx-forwarded-host: admin.internal\r\nX-Forwarded-For: 10.0.0.1\r\n"
                  b"X-Forwarded-Proto: https\r\n\r\n")


def test_what_a_client_says_about_earlier_hops_is_dropped(replicas: Any, gateway: Any) -> None:
    """Without trust_forwarded the gateway is the first hop: X-Forwarded-For and -Proto are its own, and the other
    forwarding headers a client may send (Forwarded, X-Real-IP, X-Forwarded-Host) are dropped."""
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    got = replica_headers(port, RAW_FORWARDING)
    assert got["x-forwarded-for"] == "127.0.0.1" and got["x-forwarded-proto"] == "http"
    assert not {"forwarded", "x-real-ip", "x-forwarded-host"} & set(got), got


def test_with_trust_forwarded_the_front_proxy_headers_pass(replicas: Any, gateway: Any) -> None:
    """Behind a trusted proxy (trust_forwarded) its forwarding headers are believed: X-Forwarded-For is appended to,
    Forwarded, X-Real-IP and X-Forwarded-Host pass as they are; X-Forwarded-Proto is still the gateway's own."""
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)), trust_forwarded=True)
    got = replica_headers(port, RAW_FORWARDING)
    assert got["x-forwarded-for"] == "10.0.0.1, 127.0.0.1" and got["x-forwarded-proto"] == "http"
    assert got["forwarded"] == "for=10.0.0.1;host=admin.internal"
    assert got["x-real-ip"] == "10.0.0.1" and got["x-forwarded-host"] == "admin.internal"


def test_the_consoles_session_cookie_never_reaches_an_app(replicas: Any, gateway: Any) -> None:
    """Browsers send a host's cookies to every port of it: a console user who opens a service's endpoint on the
    console's host must not hand the app their session (the app's owner would hold their account). Other cookies
    pass; a Cookie header of the session alone is dropped."""
    port = free_port()
    gateway(snapshot(1, route("open", [replicas("a").upstream()], port, auth=False)))
    got = replica_headers(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: theme=dark; ark_session=S3CRET; "
                                b"lang=zh\r\nConnection: close\r\n\r\n")
    assert got["cookie"] == "theme=dark; lang=zh"
    got = replica_headers(port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ark_session=S3CRET\r\n"
                                b"Connection: close\r\n\r\n")
    assert "cookie" not in got
    assert "S3CRET" not in json.dumps(got)
