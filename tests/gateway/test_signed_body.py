"""A tampered signed body must not even *start* a request at the replica.

Most app servers (uvicorn, werkzeug, ``http.server``) call the app handler as soon as the request
head has arrived and hand it the body as it streams in; a handler may act before (or without)
reading the body to the end. So "the replica discards a truncated body" is not enough: nothing of
a signed-payload request may reach the replica until its content hash was checked. This replica
records a request when its head arrives, before it reads any body byte.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from arkserve.auth.signing import sign_headers
from arkserve.domain.routing import Upstream
from arkserve.sdk.auth import ArkAuth
from tests.gateway.harness import SK, RawReplica, route, snapshot
from tests.live import free_port

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"


class HeadRecordingReplica(RawReplica):
    """Records every request head it sees (the 'handler ran'), then drains the body and answers."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            try:
                while (got := self.read_head(conn, buf)) is not None:
                    head, buf = got
                    self.heads.append(head.split(b"\r\n", 1)[0])  # the handler is called here
                    rest = self.skip_body(conn, buf, self.content_length(head))
                    if rest is None:
                        return
                    buf = rest
                    conn.sendall(_OK)
            except OSError:
                return

    def upstream(self) -> Upstream:
        return Upstream("r1", "127.0.0.1", self.port)


@pytest.mark.parametrize("size", [10, 100 * 1024, 3 * 1024 * 1024])
def test_tampered_signed_body_never_starts_a_request_at_the_replica(gateway: Any, size: int) -> None:
    rep = HeadRecordingReplica()
    try:
        port = free_port()
        gateway(snapshot(1, route("svc", [rep.upstream()], port)), spool_memory_bytes=256 * 1024)
        body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        with httpx.Client(timeout=30) as c:
            assert c.post(f"http://127.0.0.1:{port}/ok", content=body, auth=ArkAuth("AKOWNER", SK)).status_code == 200
            h = sign_headers(method="POST", url="/bad", host=f"127.0.0.1:{port}", access_key="AKOWNER",
                             secret_key=SK, body=body, now=time.time())
            for tampered in (body[:-1] + b"!", b"!" + body[1:]):  # last byte / first byte changed
                bad = c.post(f"http://127.0.0.1:{port}/bad", headers=h, content=tampered)
                assert bad.status_code == 401 and bad.json()["code"] == "ContentHashMismatch"
        time.sleep(0.1)
        assert rep.heads == [b"POST /ok HTTP/1.1"]  # no byte of /bad ever reached the replica
    finally:
        rep.close()
