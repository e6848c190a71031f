"""The response half of an exchange: relay the replica's head and body to the client.

Heads are filtered (hop-by-hop headers out, ``X-Request-ID`` in) and held back briefly so a small
response goes out in one write; bodies are forwarded as they arrive (re-chunked when the replica
gave no length), never collected.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from arkserve.gateway.http import HttpError, response_head
from arkserve.gateway.phase import FINISHED, STARTED
from arkserve.gateway.tunnel import Tunnel

if TYPE_CHECKING:
    from arkserve.domain.routing import ServiceRoute
    from arkserve.gateway.balancer import ReplicaState
    from arkserve.gateway.core import Core
    from arkserve.gateway.exchange import Exchange
    from arkserve.gateway.proxy import ClientConnection
    from arkserve.gateway.spool import Spool
    from arkserve.gateway.upstream import UpstreamConnection

_NO_BODY_STATUS = (204, 304)
_UPGRADE_VALUE = re.compile(rb"\r\nupgrade:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)", re.I)


class ResponseRelay:
    __slots__ = (
        "access_key", "async_req", "attempts", "body_buf", "buffered", "bytes_in", "bytes_out", "chunked",
        "cl", "claimed", "conn", "core", "deadline", "early", "eof_body", "error", "expect", "head",
        "http10", "keep_alive", "method", "pending_head", "rechunk", "replica", "req_done",
        "require_signed", "resp", "rid", "route", "spool", "stage", "status", "t0", "timeout_s", "tunnel", "up",
        "upgrade", "url", "wall",
    )
    conn: ClientConnection
    core: Core
    route: ServiceRoute | None
    up: UpstreamConnection | None
    method: bytes
    rid: bytes
    status: int
    keep_alive: bool
    http10: bool
    rechunk: bool
    eof_body: bool
    resp: int  # phase.py
    stage: int
    pending_head: bytes | None
    bytes_out: int
    deadline: float
    timeout_s: float  # the inactivity timeout toward the replica: the route's, or the dispatcher's (request.py)
    req_done: bool
    spool: Spool | None
    upgrade: bytes | None
    early: bytes
    tunnel: Tunnel | None
    replica: ReplicaState | None

    def _finish(self, reuse_upstream: bool, status: int = 0, client_gone: bool = False) -> None:
        raise NotImplementedError

    def fail(self, err: HttpError, *, close: bool = False) -> None:
        raise NotImplementedError

    def resend(self, exc: BaseException | None) -> bool:
        raise NotImplementedError

    def upstream_refused(self, err: HttpError) -> None:
        """The replica's answer broke the rules (a head past the bound, an unasked-for 101): counted as an upstream
        error of kind ``protocol``, and answered with ``err`` (a 502). Not resent: the replica did answer."""
        self.core.metrics.upstream_error(self.route.name, "protocol")  # type: ignore[union-attr]
        self.fail(err)

    # ------------------------------------------------------------------------------ response
    def resp_head(self, status: int, raw: bytes) -> None:
        self.status = status
        head, has_len, up_chunked = response_head(raw)
        out = [head, b"\r\n"]
        head_req = self.method == b"HEAD"
        if not has_len and not head_req and status not in _NO_BODY_STATUS:
            self.eof_body = not up_chunked
            if self.http10:
                self.keep_alive = False
            else:
                self.rechunk = True
                out.append(b"transfer-encoding: chunked\r\n")
        out += (b"x-request-id: ", self.rid, b"\r\n")
        if not self.keep_alive or self.conn.core.closing:
            self.keep_alive = False
            out.append(b"connection: close\r\n\r\n")
        elif self.http10:
            out.append(b"connection: keep-alive\r\n\r\n")
        else:
            out.append(b"\r\n")
        self.pending_head = b"".join(out)
        self.resp = STARTED
        if head_req:  # llhttp would wait for a body; the connection is not reusable
            up = self.up
            assert up is not None
            self.flush_head()
            up.close()
            self.up = None
            self._finish(False)

    def resp_upgrade(self, raw: bytes) -> None:
        """The replica switched protocols (101) as the client asked: relay its head, become a tunnel."""
        self.status = 101
        self.resp = STARTED
        head = response_head(raw)[0]  # without its Connection and Upgrade: they are set here
        m = _UPGRADE_VALUE.search(raw)
        proto = m.group(1) if m and m.group(1) else self.upgrade
        conn, up = self.conn, self.up
        assert conn.transport is not None and up is not None and up.transport is not None and proto is not None
        conn.transport.write(b"".join((head, b"\r\nconnection: upgrade\r\nupgrade: ", proto,
                                       b"\r\nx-request-id: ", self.rid, b"\r\n\r\n")))
        early, self.early = self.early, b""
        self.tunnel = up.tunnel = Tunnel(cast("Exchange", self), conn.transport, up.transport, early)
        if self.replica is not None:
            self.replica.tunnels += 1  # until the exchange releases its replica (exchange._release)
        conn.become_tunnel()

    def flush_head(self) -> None:
        head, self.pending_head = self.pending_head, None
        if head is not None:
            self.conn.transport.write(head)  # type: ignore[union-attr]

    def resp_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        t = self.conn.transport
        assert t is not None
        if self.pending_head is not None:
            head, self.pending_head = self.pending_head, None
            if self.rechunk:
                t.write(b"%s%x\r\n%s\r\n" % (head, len(data), data))
            else:
                t.write(head + data)
        elif self.rechunk:
            t.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            t.write(data)
        self.deadline = self.core.clock + self.timeout_s

    def resp_end(self, upstream_keep_alive: bool) -> None:
        t = self.conn.transport
        tail = b"0\r\n\r\n" if self.rechunk else b""
        if self.pending_head is not None:
            tail = self.pending_head + tail
            self.pending_head = None
        if tail:
            t.write(tail)  # type: ignore[union-attr]
        self._finish(upstream_keep_alive and self.req_done and self.spool is None)

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.up = None
        if self.resp == FINISHED:
            return
        if self.eof_body and self.resp == STARTED and self.status:  # body delimited by the close
            self.resp_end(False)
            return
        self.core.metrics.upstream_error(self.route.name, "reset")  # type: ignore[union-attr]
        if self.resend(exc):
            return
        if self.resp == STARTED:
            self.flush_head()
            self.conn.abort()
            self._finish(False, status=502)
        else:
            self.fail(HttpError(502, "UpstreamError", "the replica closed the connection without a full "
                                "response" + (f": {exc}" if exc else "")))

