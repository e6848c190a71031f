"""Asynchronous inference at the gateway: intake (store the request, answer 202) and result lookups.

A signed request with ``X-Ark-Async: true``, or ``<method> /async/<path>``, is authenticated exactly like any
request; its body is then read whole (hashed and checked when signed) and handed with its head to the
:class:`AsyncQueue` the CLI injects (the gateway never imports the store). The queue's ``submit`` runs in a
thread and returns only once the request is committed durably; only then is 202 ``{id, status, status_url}``
written. ``GET /async/<id>`` answers the request's status and ``GET /async/<id>/result`` the stored response,
for keys of the user who submitted it only (anyone else: 404).

The dispatcher (``arkserve.asyncq``) sends stored requests back through the gateway on loopback with
``X-Ark-Internal`` (a token derived from the master key, compared in constant time) and ``X-Ark-Internal-Key``
(the submitting key): such a request skips the signature check (it was checked at intake) but not the key's
access, and is balanced, queued and retried like any other. Both headers are never forwarded.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from arkserve.auth.signing import EMPTY_CONTENT_HASH, format_date
from arkserve.domain.async_requests import ResultRefusal, Submission, SubmitRefused, new_id
from arkserve.gateway.http import HOP_BY_HOP, REASONS, HttpError, without_console_cookie
from arkserve.gateway.phase import FINISHED, STARTED

if TYPE_CHECKING:
    import asyncio

    from arkserve.gateway.exchange import Exchange

ID_RE = re.compile(rb"^/async/(ar_[0-9a-f]{32})(/result)?$")
# request headers not stored for the replay: the gateway sets its own, or they belong to this hop / the signature
_NOT_STORED = HOP_BY_HOP | {b"host", b"authorization", b"date", b"x-ark-content-sha256", b"content-length",
                            b"expect", b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto",
                            b"x-ark-access-key", b"x-ark-async", b"x-ark-callback-url", b"x-ark-internal",
                            b"x-ark-internal-key", b"forwarded", b"x-real-ip", b"x-forwarded-host"}


class AsyncQueue(Protocol):
    """What the gateway needs of the store-backed queue (``arkserve.asyncq.intake``). Blocking methods are called
    from a thread; ``check_callback`` and ``metrics_text`` on the loop (no I/O)."""

    max_body_bytes: int
    internal_token: bytes

    def submit(self, sub: Submission) -> None: ...  # returns once committed

    def lookup(self, request_id: str, service: str, user_id: int | None) -> dict[str, Any] | None: ...

    def result(self, request_id: str, service: str, user_id: int | None
               ) -> tuple[int, list[list[str]], bytes] | ResultRefusal | None: ...

    def check_callback(self, url: str) -> str | None: ...  # why the URL is refused, or None

    def metrics_text(self) -> str: ...


@dataclass(slots=True)
class AsyncRequest:
    kind: str  # submit | status | result
    request_id: str
    path: bytes = b""
    callback: str | None = None
    headers: list[list[str]] = field(default_factory=list)
    base: str = ""  # scheme://host of the status URL, from this request's Host (taken now: pipelining moves on)


def internal_ok(queue: AsyncQueue | None, token: bytes) -> bool:
    return queue is not None and bool(queue.internal_token) and hmac.compare_digest(token, queue.internal_token)


def classify(queue: AsyncQueue, method: bytes, url: bytes, flag: bytes | None, callback: bytes | None,
             headers: list[tuple[bytes, bytes]], tls: bool) -> AsyncRequest | HttpError | None:
    """An async submission, a status/result lookup, or None (an ordinary request)."""
    host = next((v for n, v in headers if n.lower() == b"host"), b"").decode("latin-1")
    base = f"{'https' if tls else 'http'}://{host}"
    if url.startswith(b"/async/"):
        m = ID_RE.match(url)
        if m is not None and method in (b"GET", b"HEAD"):
            return AsyncRequest("result" if m.group(2) else "status", m.group(1).decode(), base=base)
        path = url[6:]
    elif flag is not None and flag.strip().lower() in (b"true", b"1"):
        path = url
    else:
        return None
    cb = None
    if callback is not None:
        try:
            cb = callback.decode("ascii").strip()
        except UnicodeDecodeError:
            return HttpError(400, "BadCallbackUrl", "X-Ark-Callback-Url must be an ASCII URL")
        why = queue.check_callback(cb)
        if why is not None:
            return HttpError(400, "BadCallbackUrl", why)
    # what the gateway forwards of a request (request.py): not the headers its Connection header names, nor a
    # name with "_" (read as "-" by CGI/WSGI servers)
    named = {t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b",")}
    kept = [[n.decode("latin-1"), (without_console_cookie(v) if n.lower() == b"cookie" else v).decode("latin-1")]
            for n, v in headers if n.lower() not in _NOT_STORED and n.lower() not in named and b"_" not in n]
    kept = [[n, v] for n, v in kept if v or n.lower() != "cookie"]
    return AsyncRequest("submit", new_id(), path, cb, kept, base)


def prepare_body(ex: Exchange, has_body: bool) -> None:
    """Async submissions read their body whole before answering: spool it even when unsigned."""
    if has_body and ex.spool is None:
        ex.spool = ex.core.new_spool()
        if not ex.claimed:  # a public service: nothing was claimed, so accept it as an unsigned payload
            ex.claimed = EMPTY_CONTENT_HASH


def run(ex: Exchange) -> None:
    """Instead of dispatching to a replica (the body, if any, is complete and checked): store or look up."""
    core = ex.core
    req = ex.async_req
    queue = core.async_queue
    assert req is not None and queue is not None and ex.route is not None
    key = core.snapshot.keys.get(ex.access_key) if ex.access_key else None
    user_id = key.user_id if key is not None else None
    loop: asyncio.AbstractEventLoop = core.loop
    if req.kind == "submit":
        spool, ex.spool = ex.spool, None
        sub = Submission(req.request_id, ex.route.name, user_id, ex.access_key, ex.method.decode("ascii"),
                         req.path.decode("latin-1"), req.headers, req.callback)
        if spool is not None:
            sub.body_size = spool.size
            if spool.pieces is not None:
                sub.body = b"".join(spool.pieces)
            else:
                spool.rewind()
                sub.body_file = spool._file  # handed over whole; closed below
        fut = loop.run_in_executor(None, queue.submit, sub)

        def submitted(f: asyncio.Future[None]) -> None:
            if spool is not None:
                spool.close()
            if f.exception() is not None:
                _fail(ex, f.exception())
                return
            url = f"{req.base}/async/{req.request_id}"
            _answer(ex, 202, {"id": req.request_id, "status": "queued", "status_url": url}, [("location", url)])

        fut.add_done_callback(submitted)
        return
    if req.kind == "status":
        fut2 = loop.run_in_executor(None, queue.lookup, req.request_id, ex.route.name, user_id)

        def looked_up(f: asyncio.Future[dict[str, Any] | None]) -> None:
            if f.exception() is not None:
                _fail(ex, f.exception())
                return
            doc = f.result()
            if doc is None:
                _not_found(ex)
                return
            doc["status_url"] = f"{req.base}/async/{req.request_id}"
            doc["result_url"] = doc["status_url"] + "/result"
            _answer(ex, 200, doc, [])

        fut2.add_done_callback(looked_up)
        return
    fut3 = loop.run_in_executor(None, queue.result, req.request_id, ex.route.name, user_id)

    def got(f: asyncio.Future[tuple[int, list[list[str]], bytes] | ResultRefusal | None]) -> None:
        if f.exception() is not None:
            _fail(ex, f.exception())
            return
        res = f.result()
        if res is None:
            _not_found(ex)
            return
        if isinstance(res, ResultRefusal):  # not ready, or failed: the gateway's own error, with this request's id
            ex.fail(HttpError(res.status, res.code, res.message))
            return
        status, headers, body = res
        _write(ex, status, [(k, v) for k, v in headers] + [("x-ark-async-id", req.request_id)], body)

    fut3.add_done_callback(got)


def _not_found(ex: Exchange) -> None:
    ex.fail(HttpError(404, "AsyncRequestNotFound", "no asynchronous request with this id for your keys "
                      "(results are kept for the retention period)"))


def _fail(ex: Exchange, exc: BaseException | None) -> None:
    if isinstance(exc, SubmitRefused):  # the client's own bound (asyncq.user_queued_bytes), not the store away
        ex.fail(HttpError(exc.status, exc.code, exc.message, retry_after=exc.retry_after))
        return
    message = getattr(exc, "message", None) or "the request store is not available"
    ex.fail(HttpError(503, "AsyncStoreUnavailable", f"{message}; try again", retry_after=1))


def _answer(ex: Exchange, status: int, doc: dict[str, Any], extra: list[tuple[str, str]]) -> None:
    _write(ex, status, [("content-type", "application/json"), *extra], json.dumps(doc).encode())


def _write(ex: Exchange, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    if ex.resp == FINISHED:  # the client went away meanwhile (a submission stays accepted)
        return
    close = not ex.keep_alive or ex.core.closing
    ex.keep_alive = not close
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower().encode() not in _RESPONSE_SET]
    lines += [f"content-length: {len(body)}", f"x-request-id: {ex.rid.decode()}", f"date: {format_date(time.time())}"]
    if close:
        lines.append("connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    t = ex.conn.transport
    if t is not None and not ex.conn.closed:
        t.write(head if ex.method == b"HEAD" else head + body)
    ex.resp = STARTED
    ex.status = status
    ex.bytes_out = len(body)
    ex._finish(False)  # the exchange's own ending: log record, next pipelined request


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return REASONS.get(status, "Unknown")


_RESPONSE_SET = HOP_BY_HOP | {b"content-length", b"x-request-id", b"date"}
