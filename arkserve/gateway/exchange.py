"""One request and its response, from the moment its headers are parsed until the log record.

Body bytes from the client either stream to the replica (buffered, with backpressure, until an
upstream connection is attached) or go to a :class:`Spool` when the content hash must be checked
first. Connect failures before any byte was written are retried on another replica. So is an
idempotent request without a body (GET, HEAD, OPTIONS, DELETE, PUT, TRACE) whose connection closes
before any byte of the response came back: a kept-alive connection the replica closed as the request
went out, or a replica stopping with the request unread (as nginx's ``proxy_next_upstream error``
does; a POST may have been acted on, so it is not sent twice). Anything else is reported (502/504
before the response started, an aborted connection after).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from arkserve.auth.signing import SignatureError, check_payload
from arkserve.gateway import asyncintake
from arkserve.gateway import balancer as bal
from arkserve.gateway.http import HttpError, no_replica_ready, service_failing
from arkserve.gateway.phase import ACTIVE, FINISHED, NO_RESPONSE, PENDING, QUEUED, SENDING, STARTED
from arkserve.gateway.relay import ResponseRelay
from arkserve.gateway.spool import Spool
from arkserve.gateway.upstream import UpstreamConnection

if TYPE_CHECKING:
    from arkserve.domain.routing import ServiceRoute
    from arkserve.gateway.asyncintake import AsyncRequest
    from arkserve.gateway.core import Core
    from arkserve.gateway.proxy import ClientConnection
    from arkserve.gateway.tunnel import Tunnel

PAUSE_BUFFER, PAUSE_UPSTREAM = 1, 2
_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"DELETE", b"PUT", b"TRACE"))
_HIGH_WATER = 256 * 1024
_PIECE = 256 * 1024


class Exchange(ResponseRelay):
    __slots__ = ()  # declared once, in ResponseRelay

    def __init__(self, conn: ClientConnection, core: Core, route: ServiceRoute | None, method: bytes,
                 url: bytes, head: list[bytes], rid: bytes, chunked: bool, cl: int, keep_alive: bool,
                 http10: bool) -> None:
        self.conn, self.core, self.route = conn, core, route
        self.method, self.url, self.head, self.rid = method, url, head, rid
        self.chunked, self.cl, self.keep_alive, self.http10 = chunked, cl, keep_alive, http10
        self.access_key = ""
        self.claimed = ""
        self.require_signed = False
        self.error: HttpError | None = None
        self.expect = False
        self.t0 = time.perf_counter()
        self.wall = time.time()
        self.spool: Spool | None = None
        self.body_buf: list[bytes] = []
        self.buffered = self.bytes_in = self.bytes_out = self.attempts = self.status = 0
        self.req_done = self.rechunk = self.eof_body = False
        self.stage = PENDING  # phase.py
        self.resp = NO_RESPONSE
        self.replica: bal.ReplicaState | None = None
        self.up: UpstreamConnection | None = None
        self.pending_head: bytes | None = None
        self.deadline = float("inf")
        # the replica's inactivity timeout: the route's; a verified dispatcher request gets the gateway's own
        # async_request_timeout_s instead (request._internal)
        self.timeout_s = route.request_timeout_s if route is not None else 0.0
        self.upgrade: bytes | None = None  # the Upgrade the client asked for (a WebSocket handshake)
        self.early = b""  # bytes the client sent behind its handshake, before the 101
        self.tunnel: Tunnel | None = None
        self.async_req: AsyncRequest | None = None  # an asynchronous submission or lookup (asyncintake.py)

    # ------------------------------------------------------------------ request body from the client
    def feed_body(self, data: bytes | memoryview) -> None:
        """A piece of the request body: bytes from the parser, or (a Content-Length body past the parser,
        ``ClientConnection.left``) the received chunk itself or a view of it, copied only where it is kept."""
        self.bytes_in += len(data)
        if self.resp == FINISHED or self.error is not None:
            return
        if self.bytes_in > self.core.config.max_body_bytes:
            self.fail(HttpError(413, "PayloadTooLarge", "request body exceeds "
                                f"{self.core.config.max_body_bytes} bytes"), close=True)
            return
        if self.spool is not None:
            if self.async_req is not None and self.bytes_in > self.core.async_queue.max_body_bytes:  # type: ignore[union-attr]
                self.fail(HttpError(413, "PayloadTooLarge", "an asynchronous request's body may not exceed "
                                    f"{self.core.async_queue.max_body_bytes} bytes"), close=True)  # type: ignore[union-attr]
                return
            self.spool.write(data if isinstance(data, bytes) else bytes(data))
        elif self.stage == SENDING:
            self._send_body(data)
            self.deadline = self.core.clock + self.timeout_s
        else:
            self.body_buf.append(data if isinstance(data, bytes) else bytes(data))
            self.buffered += len(data)
            if self.buffered > _HIGH_WATER:
                self.conn.pause(PAUSE_BUFFER)

    def _send_body(self, data: bytes | memoryview) -> None:
        t = self.up.transport  # type: ignore[union-attr]
        if self.chunked:
            t.writelines((b"%x\r\n" % len(data), data, b"\r\n"))  # type: ignore[union-attr]
        else:
            t.write(data)  # type: ignore[union-attr]

    def body_end(self) -> None:
        self.req_done = True
        if self.resp == FINISHED or self.error is not None:
            return
        if self.spool is not None:
            try:
                check_payload(self.claimed, self.spool.content_hash(), self.spool.size,
                              require_signed=self.require_signed)
            except SignatureError as exc:
                self.core.metrics.auth_failure(exc.code)
                self.error = HttpError(exc.status, exc.code, exc.message)
                if self.stage != PENDING:
                    self.fail(self.error)
                return
            if self.stage != PENDING:
                self.dispatch()
        elif self.stage == SENDING:
            if self.chunked:
                self.up.transport.write(b"0\r\n\r\n")  # type: ignore[union-attr]
            self.conn.resume(PAUSE_UPSTREAM)

    # --------------------------------------------------------------------------- dispatching
    def start(self) -> None:
        """Called when this exchange reaches the front of its connection's pipeline."""
        self.stage = ACTIVE
        if self.error is not None:
            self.fail(self.error)
        elif self.expect and not self.req_done:
            self.conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        if self.error is None and (self.spool is None or self.req_done):
            self.dispatch()

    def dispatch(self) -> None:
        if self.async_req is not None:  # stored for the dispatcher, or a lookup: no replica now
            asyncintake.run(self)
            return
        core = self.core
        route = self.route
        assert route is not None
        self.stage = ACTIVE
        pool = core.balancer.pools.get(route.name)
        st = pool.acquire(core.clock, self.head) if pool is not None else None
        if st is None:
            if route.failed_without_replicas:  # say why now rather than at the queue timeout
                self.fail(service_failing(route.name, route.failing, core.config.retry_after_s))
                return
            core.enqueue(self)
            return
        self.replica = st
        self.deadline = core.clock + self.timeout_s
        up = core.upstreams.take(st.address)
        if up is not None:
            self.attach(up)
        else:
            core.loop.create_task(self._connect(st))

    async def _connect(self, st: bal.ReplicaState) -> None:
        core = self.core
        try:
            up = await asyncio.wait_for(core.upstreams.connect(st.address), core.config.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            bal.eject(st, core.clock, core.config.eject_s)
            self._release()
            core.metrics.upstream_error(self.route.name, "connect")  # type: ignore[union-attr]
            core.pump_all()
            if self.resp == FINISHED:
                return
            self.attempts += 1
            if self.attempts > core.config.connect_retries:
                self.fail(HttpError(502, "UpstreamUnavailable", f"no replica accepted the connection: {exc}"
                                    if str(exc) else "no replica accepted the connection"))
            else:
                self.dispatch()
            return
        if self.resp == FINISHED:
            core.upstreams.put(up)
            return
        bal.succeed(st)
        self.attach(up)

    def resend(self, exc: BaseException | None) -> bool:
        """After the upstream connection closed with no response: send the request again (on a new connection,
        perhaps to another replica) when that is safe. False when it is not (the caller answers 502), and for a
        malformed response (``exc`` not a socket error: sending again would not help). The other idle
        connections to that replica are closed too: they may be as dead."""
        core = self.core
        if (not (exc is None or isinstance(exc, OSError)) or self.stage != SENDING or self.resp != NO_RESPONSE
                or not self.req_done or self.chunked or self.cl > 0 or self.upgrade is not None
                or self.method not in _IDEMPOTENT or self.attempts >= core.config.connect_retries):
            return False
        self.attempts += 1
        st = self.replica
        if st is not None:
            core.upstreams.discard(st.address)
        self._release()
        self.head.pop()  # what attach() added behind the head: the terminator (no body here)
        self.dispatch()
        return True

    def attach(self, up: UpstreamConnection) -> None:
        self.up = up
        up.ex = self
        t = up.transport
        assert t is not None
        head = self.head
        if self.spool is not None:
            head.append(b"content-length: %d\r\n\r\n" % self.spool.size)
        elif self.chunked:
            head.append(b"transfer-encoding: chunked\r\n\r\n")
        elif self.cl >= 0:
            head.append(b"content-length: %d\r\n\r\n" % self.cl)
        else:
            head.append(b"\r\n")
        if self.body_buf:
            if self.chunked and self.spool is None:
                for piece in self.body_buf:
                    head += (b"%x\r\n" % len(piece), piece, b"\r\n")
            else:
                head.extend(self.body_buf)
            self.body_buf = []
            self.buffered = 0
            self.conn.resume(PAUSE_BUFFER)
        spool = self.spool
        t.write(b"".join(head))
        if spool is not None and spool.pieces is not None and spool.size <= _PIECE:
            for piece in spool.pieces:  # a small checked body: the received pieces, not joined (no copy)
                t.write(piece)
            spool.close()
            self.spool = spool = None
        self.stage = SENDING
        if spool is not None:
            spool.rewind()
            self.pump_spool()
        elif self.req_done and self.chunked:
            t.write(b"0\r\n\r\n")
        if up.paused:
            self.upstream_paused()
        if self.conn.write_paused:
            up.pause_reading()

    def pump_spool(self) -> None:
        up, spool = self.up, self.spool
        assert up is not None and spool is not None and up.transport is not None
        while not up.paused:
            piece = spool.read(_PIECE)
            if not piece:
                spool.close()
                self.spool = None
                return
            up.transport.write(piece)

    def upstream_paused(self) -> None:
        if not self.req_done:
            self.conn.pause(PAUSE_UPSTREAM)

    def upstream_resumed(self) -> None:
        self.conn.resume(PAUSE_UPSTREAM)
        if self.spool is not None and self.stage == SENDING:
            self.pump_spool()
        self.deadline = self.core.clock + self.timeout_s

    # ------------------------------------------------------------------------------ endings
    def fail(self, err: HttpError, *, close: bool = False) -> None:
        """Answer with the gateway's own error (or abort if the response already started)."""
        if self.resp == FINISHED:
            return
        if self.up is not None:
            up, self.up = self.up, None
            up.close()
        if self.resp == STARTED:
            self.conn.abort()
            self._finish(False, status=err.status)
            return
        if close or not self.req_done or err.status == 400:  # a malformed request: do not trust the stream
            self.keep_alive = False
        if self.stage == PENDING:  # behind another exchange on its connection: answered by start() in turn
            self.error = err
            return
        self.resp = STARTED
        self.status = err.status
        self.conn.write_error(self, err)
        self._finish(False)

    def client_lost(self) -> None:
        if self.resp == FINISHED:
            return
        if self.up is not None:
            up, self.up = self.up, None
            up.close()
        self.keep_alive = False
        self._finish(False, status=self.status if self.resp == STARTED else 499, client_gone=True)

    def check(self, now: float) -> None:
        if self.resp == FINISHED or now < self.deadline:
            return
        if self.tunnel is not None:  # nothing moved for tunnel_idle_s
            self.tunnel.close()
            return
        if self.stage == QUEUED:
            self.core.dequeue(self)
            cfg, name = self.core.config, self.route.name  # type: ignore[union-attr]
            route = self.core.services.get(name)
            if route is None or not route.upstreams:
                waited = route.cold_start_timeout_s if route and route.cold_start_timeout_s > 0 else cfg.queue_timeout_s
                self.fail(no_replica_ready(name, route.not_ready if route else "", waited, cfg.retry_after_s))
            else:
                self.fail(HttpError(503, "NoReplicaAvailable", "no ready replica became free within "
                                    f"{cfg.queue_timeout_s:g} s", retry_after=cfg.retry_after_s))
        else:
            self.core.metrics.upstream_error(self.route.name, "timeout")  # type: ignore[union-attr]
            self.fail(HttpError(504, "UpstreamTimeout", f"the replica did not answer within {self.timeout_s:g} s"))

    def tunnel_closed(self) -> None:
        """Its tunnel ended (both transports closed): record it and let the connection go."""
        self._finish(False)
        self.conn.connection_lost(None)  # the transport reports to the tunnel now, not to the connection

    def _release(self) -> None:
        st, self.replica = self.replica, None
        if st is not None:
            bal.release(st)
            if self.tunnel is not None:
                st.tunnels -= 1
            core = self.core
            if core.waiting:
                core.pump(self.route.name)  # type: ignore[union-attr]

    def _finish(self, reuse_upstream: bool, status: int = 0, client_gone: bool = False) -> None:
        if self.resp == FINISHED:
            return
        self.resp = FINISHED
        st = self.replica
        replica, revision = (st.replica, st.revision) if st is not None else ("", "")
        self._release()
        if self.stage == QUEUED:
            self.core.dequeue(self)
        up, self.up = self.up, None
        if up is not None:
            if reuse_upstream:
                self.core.upstreams.put(up)
            else:
                up.close()
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        self.core.record(self, status or self.status, replica, revision)
        if not client_gone:
            self.conn.exchange_finished(self)
