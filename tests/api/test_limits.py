"""API limits over raw sockets: body size (413 before reading), credentials before the body, slow headers
and bodies cut (408), a thousand trickling connections closed, one Date header on a 401."""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.auth.signing import sign_headers
from arkserve.bootstrap import prepare
from tests.live import free_port, gateway_port_base, serve

LIMIT = 64 * 1024


@dataclass
class Api:
    port: int
    ak: str
    sk: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def signed(self, method: str, path: str, extra: str = "") -> bytes:
        host = f"127.0.0.1:{self.port}"
        h = sign_headers(method=method, url=path, host=host, access_key=self.ak, secret_key=self.sk, body=None,
                         now=time.time())
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in h.items())]
        return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": gateway_port_base(),
                           "api.max_body_bytes": LIMIT, "api.header_timeout_s": 1.0,
                           "api.body_timeout_s": 1.0}, env=env)
    boot = prepare(s, env=env)
    port = free_port()
    with serve(create_app(s, boot.store, boot.master), port, settings=s):  # the API's own server
        yield Api(port, boot.access_key, boot.secret_key)
    boot.store.dispose()


def _response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def test_a_declared_large_body_is_413_before_any_byte_of_it(api: Api) -> None:
    for head in (api.signed("POST", "/api/v1/services", "Content-Type: application/json\r\n"
                            "Content-Length: 300000000\r\n"),
                 b"POST /api/v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n"):
        with api.connect() as sock:
            sock.sendall(head)  # and not one byte of the body: the answer comes anyway
            raw = _response(sock)
        assert _status(raw) == 413 and b'"PayloadTooLarge"' in raw and b'"request_id"' in raw, raw


def test_credentials_are_checked_before_the_body_is_read(api: Api) -> None:
    heads = {
        b"POST /api/v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n": b"MissingAuthorization",
        b"POST /api/v1/services HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\nAuthorization: HMAC-SHA256 "
        b"Credential=AKNOPE&SignedHeaders=date;host;x-ark-content-sha256&Signature=x\r\n\r\n":
            b"MalformedAuthorization",
        b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Cookie: ark_session=forged\r\n\r\n": b"SessionExpired",
    }
    for head, code in heads.items():
        with api.connect() as sock:
            sock.sendall(head)
            raw = _response(sock)
        assert _status(raw) == 401 and code in raw, raw


def test_a_chunked_body_is_cut_at_the_limit(api: Api) -> None:
    sent = 0
    with api.connect() as sock:
        sock.sendall(api.signed("POST", "/api/v1/services", "Content-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n"))
        chunk = b"%x\r\n%s\r\n" % (4096, b" " * 4096)
        sock.settimeout(0.05)
        raw = b""
        while not raw:
            try:
                raw = sock.recv(65536)
            except TimeoutError:
                sock.sendall(chunk)
                sent += 4096
            assert sent < 50 * LIMIT, "the server kept reading past the limit"
        sock.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            raw += _response(sock)
    assert _status(raw) == 413 and b'"PayloadTooLarge"' in raw, raw


def test_a_body_that_stops_is_408(api: Api) -> None:
    with api.connect() as sock:
        sock.sendall(api.signed("POST", "/api/v1/services", "Content-Type: application/json\r\n"
                                "Content-Length: 100\r\n") + b'{"name": ')
        t0 = time.monotonic()
        raw = _response(sock)
    assert _status(raw) == 408 and b'"RequestTimeout"' in raw, raw
    assert 0.9 < time.monotonic() - t0 < 5


def test_slow_headers_get_408_and_a_silent_connection_is_closed(api: Api) -> None:
    with api.connect() as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        raw = b""
        while not raw and time.monotonic() - t0 < 8:
            try:
                raw = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line every 0.2 s never completes the head
        took = time.monotonic() - t0
    assert _status(raw) == 408 and b'"RequestTimeout"' in raw, raw
    assert 0.9 < took < 5, took
    with api.connect() as sock:
        t0 = time.monotonic()
        assert _response(sock) == b""  # closed without a word
        assert time.monotonic() - t0 < 5


def test_a_thousand_trickling_connections_do_not_stay_open(api: Api) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(1000):
        s = socket.create_connection(("127.0.0.1", api.port), timeout=10)
        s.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    t0, open_ = time.monotonic(), set(socks)
    healthz = []
    try:
        while open_ and time.monotonic() - t0 < 20:
            for key, _ in sel.select(timeout=0.3):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                with contextlib.suppress(BlockingIOError, ConnectionResetError):
                    s.recv(65536)
                sel.unregister(s)
                open_.discard(s)
            for s in list(open_):
                try:
                    s.send(b"X")  # a byte of a header name now and then
                except OSError:
                    sel.unregister(s)
                    open_.discard(s)
            start = time.monotonic()
            healthz.append((httpx.get(f"{api.url}/api/v1/healthz", timeout=10).status_code,
                            time.monotonic() - start))
        took = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    assert not open_, f"{len(open_)} of 1000 trickling connections still open after {took:.1f}s"
    assert all(code == 200 for code, _ in healthz)
    print(f"1000 trickling connections closed in {took:.1f}s; slowest /healthz meanwhile "
          f"{max(t for _, t in healthz) * 1000:.0f} ms")


def test_a_body_nobody_reads_cannot_trickle_behind_the_response(api: Api) -> None:
    with api.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\nabc")  # the console page
        sock.settimeout(0.3)
        t0, raw = time.monotonic(), b""
        while time.monotonic() - t0 < 8:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"x")
                continue
            if not chunk:
                break
            raw += chunk
        else:
            pytest.fail("the connection stayed open while the body trickled on")
    assert _status(raw) == 200


def test_a_401_has_one_date_header(api: Api) -> None:
    with api.connect() as sock:
        sock.sendall(b"GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = _response(sock)
    head = raw.split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")
    assert _status(raw) == 401
    assert len([h for h in head if h.startswith(b"date:")]) == 1, head


def test_bodies_under_the_limit_work(api: Api) -> None:
    from arkserve.sdk.client import Client

    with Client(api.url, api.ak, api.sk) as c:
        svc = c.post("/services", {"name": "ok", "image": "/usr/bin", "port": 9000, "command": "x",
                                   "env": {"A": "x" * (LIMIT // 2)}})
        assert svc["name"] == "ok"


def _one_response(sock: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes]:
    """One response with a Content-Length off the socket: (the response, what came after it)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside a response body"
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def test_a_pipelined_request_still_waiting_for_its_body_survives_the_answer_before_it(api: Api) -> None:
    """The connection ends early only for a request whose own body goes unread: not because the next request,
    already parsed, has not sent its body yet when the one before it is answered (a WebDAV client's PUT after a
    MKCOL was cut off so, now and then)."""
    body = b'{"username": "admin", "password": "not-the-password"}'
    with api.connect() as sock:
        sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        first, rest = _one_response(sock)
        sock.sendall(body)  # the second request's body, once the first is answered
        second, _ = _one_response(sock, rest)
    assert _status(first) == 200 and b"connection: close" not in first.lower()
    assert _status(second) == 401 and b"LoginFailed" in second


def test_an_answer_before_the_body_says_connection_close_and_arrives_whole(api: Api) -> None:
    """A 401 given before the body is read ends the connection, says so first, and the rest of the body the
    client goes on sending is read and dropped, not answered with a reset that could destroy the 401."""
    with api.connect() as sock:
        sock.sendall(b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n" + b"x" * 1000)
        response, _ = _one_response(sock)
        sock.sendall(b"y" * 49000)  # the rest arrives after the answer: dropped, no RST
        assert sock.recv(65536) == b""  # then the server's FIN
    assert _status(response) == 401 and b"connection: close" in response.lower()
