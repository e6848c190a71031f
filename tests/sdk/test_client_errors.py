"""Every answer the SDK's ``Client`` does not take as a result is an ``ApiError`` with its status: a redirect (the
307 a trailing slash gets) was returned as ``None``, a success, and an error body that is JSON but not an object
(``null`` from a proxy) raised ``AttributeError``. Against a small real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from arkserve.sdk.client import ApiError, Client

AK = "AKIDSDKTEST000000001"
SK = base64.b64encode(bytes(range(100, 132))).decode()

# path -> (status, headers, body)
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/api/v1/services/": (307, {"location": "/api/v1/services"}, b""),
    "/api/v1/services": (200, {"content-type": "application/json"}, b"[]"),
    "/api/v1/moved": (301, {"location": "http://evil.example/api/v1/moved"}, b"<html>moved</html>"),
    "/api/v1/null": (502, {"content-type": "application/json"}, b"null"),
    "/api/v1/list": (503, {"content-type": "application/json"}, b'["busy"]'),
    "/api/v1/string": (500, {"content-type": "application/json"}, b'"oops"'),
    "/api/v1/object": (404, {"content-type": "application/json"},
                       b'{"code": "NotFound", "message": "no such thing", "request_id": "from-body"}'),
}


class _Handler(BaseHTTPRequestHandler):
    seen: list[str] = []

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?", 1)[0]
        type(self).seen.append(f"{self.command} {path}")
        status, headers, body = ANSWERS.get(path, (404, {}, b""))
        self.send_response(status)
        for k, v in {**headers, "x-request-id": "req-from-header", "content-length": str(len(body))}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}", AK, SK) as c:
            yield c
    finally:
        server.shutdown()
        server.server_close()


def _error(call: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


def test_a_redirect_is_an_error_and_is_not_followed(client: Client) -> None:
    _Handler.seen.clear()
    e = _error(lambda: client.get("/services/"))  # it was None: no rows, no error
    assert (e.status, e.code, e.request_id) == (307, "Redirected", "req-from-header")
    assert "GET /api/v1/services/" in e.message and "moved to /api/v1/services" in e.message, e.message
    assert "trailing slash" in e.message
    assert _Handler.seen == ["GET /api/v1/services/"]  # never followed, not even on the same server
    e = _error(lambda: client.post("/moved", {"a": 1}))
    assert (e.status, e.code) == (301, "Redirected") and "http://evil.example/api/v1/moved" in e.message
    e = _error(lambda: list(client.stream_text("/services/")))
    assert (e.status, e.code) == (307, "Redirected")
    e = _error(lambda: client.upload("PUT", "/services/", [b"x"]))
    assert (e.status, e.code) == (307, "Redirected")
    assert client.get("/services") == []  # the server itself answers


@pytest.mark.parametrize(("path", "status", "text"), [("/null", 502, "null"), ("/list", 503, '["busy"]'),
                                                      ("/string", 500, '"oops"')])
def test_an_error_body_that_is_not_an_object_still_gives_an_api_error(client: Client, path: str, status: int,
                                                                      text: str) -> None:
    for call in (lambda: client.get(path), lambda: list(client.stream_text(path)),
                 lambda: client.upload("PUT", path, [b"x"])):
        e = _error(call)  # it was AttributeError: 'NoneType' object has no attribute 'get'
        assert (e.status, e.code, e.message, e.request_id) == (status, f"HTTP{status}", text, "req-from-header")


def test_the_api_error_body_is_read_as_before(client: Client) -> None:
    e = _error(lambda: client.get("/object"))
    assert (e.status, e.code, e.message, e.request_id) == (404, "NotFound", "no such thing", "from-body")
