"""Small HTTP/1.1 helpers shared by the client and upstream sides: header classes, request ids,
Host validation and the JSON error responses the gateway itself writes."""

from __future__ import annotations

import itertools
import json
import os
import re
import time

from arkserve.auth.signing import format_date

# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones the gateway rewrites itself.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})
RESPONSE_DROP = HOP_BY_HOP | {b"x-request-id"}
# the methods' text without a decode per request (verify() and the request log take str)
METHOD_NAMES = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")}
_DROP_MARK = re.compile(rb"\r\n(?:keep-alive|transfer-encoding|x-request-id|te|trailer|upgrade|proxy-[a-z-]*):")
# The console's session cookie (arkserve.api.security.SESSION_COOKIE). Browsers send a host's cookies to every port
# of it and let any port set them, so on a host that serves both the console and services an app would receive its
# visitors' console sessions, or set its owner's in their browsers: the gateway removes it both ways.
CONSOLE_COOKIE = b"ark_session"


def without_console_cookie(value: bytes) -> bytes:
    """A ``Cookie`` header's value without the console's session (``b""`` when nothing else is left)."""
    if CONSOLE_COOKIE not in value:
        return value
    pairs = [p for p in value.split(b";") if p.split(b"=", 1)[0].strip() != CONSOLE_COOKIE]
    return b";".join(pairs).strip(b" \t;")


_HEADS: dict[bytes, tuple[bytes, bool, bool]] = {}
_HEADS_MAX, _HEAD_MEMO_BYTES = 256, 1024


def response_head(raw: bytes) -> tuple[bytes, bool, bool]:
    """:func:`filter_head`, remembered for heads a replica repeats byte for byte (same status, length and
    ``Date`` second: a fixed-size answer under load), since filtering takes several byte searches (about
    1-2 µs) and a dict lookup one hash. Bounded: small heads only, and emptied when full."""
    hit = _HEADS.get(raw)
    if hit is not None:
        return hit
    out = filter_head(raw)
    if len(raw) <= _HEAD_MEMO_BYTES:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        _HEADS[raw] = out
    return out


def filter_head(raw: bytes) -> tuple[bytes, bool, bool]:
    """Filter an upstream response head (status line + header lines, no final CRLF).

    Returns the head without hop-by-hop headers (and X-Request-ID, which the gateway sets, and a Set-Cookie of the
    console's session: :data:`CONSOLE_COOKIE`), whether
    it had a Content-Length, and whether the upstream body was chunked. The common shapes (no
    hop-by-hop header, or only ``Connection: keep-alive|close``) are cut with C-level byte searches.
    """
    low = raw.lower()
    has_len = b"\r\ncontent-length:" in low
    if not raw.startswith(b"HTTP/1.1 "):
        raw = b"HTTP/1.1" + raw[8:]
    if _DROP_MARK.search(low) is None and CONSOLE_COOKIE not in low:
        i = low.find(b"\r\nconnection:")
        if i < 0:
            return raw, has_len, False
        j = low.find(b"\r\n", i + 2)
        if j < 0:
            j = len(low)
        if low[i + 13:j].strip() in (b"keep-alive", b"close") and low.find(b"\r\nconnection:", j) < 0:
            return raw[:i] + raw[j:], has_len, False
    lines = raw.split(b"\r\n")
    drop = RESPONSE_DROP
    pairs = [(line.split(b":", 1)[0].strip().lower(), line) for line in lines[1:]]
    for lname, line in pairs:
        if lname == b"connection":
            drop = drop | {v.strip().lower() for v in line.split(b":", 1)[1].split(b",")}
    chunked = False
    out = [lines[0]]
    for lname, line in pairs:
        # any Set-Cookie that names the console's session, even as a value (a nameless cookie "=ark_session=x" is
        # sent back as "ark_session=x")
        if lname == b"set-cookie" and CONSOLE_COOKIE in line.lower():
            continue
        if lname in drop:
            if lname == b"transfer-encoding":
                chunked = b"chunked" in line.lower()
            continue
        out.append(line)
    return b"\r\n".join(out), has_len, chunked

_RID_OK = re.compile(rb"[A-Za-z0-9._-]{1,128}").fullmatch
_HOST_OK = re.compile(
    rb"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?").fullmatch

_rid_prefix = b""
_rid_counter = itertools.count(1)


def new_request_id() -> bytes:
    """A unique id: a random per-process prefix plus a counter (no syscall per request)."""
    if not _rid_prefix:
        _reseed()
    return b"%s%x" % (_rid_prefix, next(_rid_counter))


def _reseed() -> None:
    global _rid_prefix, _rid_counter
    _rid_prefix = os.urandom(6).hex().encode() + b"-"
    _rid_counter = itertools.count(1)


def _forget_prefix() -> None:  # a forked worker draws its own prefix on first use
    global _rid_prefix
    _rid_prefix = b""


os.register_at_fork(after_in_child=_forget_prefix)


def request_id(client_value: bytes | None) -> bytes:
    """Keep a sane client-supplied X-Request-ID, else make one."""
    if client_value is not None and _RID_OK(client_value):
        return client_value
    return new_request_id()


def valid_host(value: bytes) -> bool:
    return _HOST_OK(value) is not None


def host_port(host: bytes) -> int | None:
    """The port of a valid ``host[:port]`` (``[v6]:port`` too), or ``None`` when it names none."""
    _, sep, tail = host.rpartition(b":")
    if not sep or b"]" in tail or not tail.isdigit():
        return None
    return int(tail)


def host_service(host: bytes, suffix: bytes) -> str | None:
    """The service of ``<service>.<base_domain>[:port]`` (``suffix`` is ``b"." + base_domain``)."""
    name = host.rsplit(b":", 1)[0] if b"]" not in host else host
    name = name.lower()
    if not name.endswith(suffix):
        return None
    svc = name[: -len(suffix)]
    if not svc or b"." in svc:
        return None
    return svc.decode("ascii")


REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
    413: "Content Too Large", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def error_response(status: int, code: str, message: str, request_id: bytes, *, close: bool,
                   retry_after: int | None = None, head_only: bool = False) -> bytes:
    """A complete HTTP/1.1 response with the JSON error body ``{code, message, request_id}``."""
    rid = request_id.decode("ascii", "replace")
    body = json.dumps({"code": code, "message": message, "request_id": rid}).encode()
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        f"x-request-id: {rid}",
        f"date: {format_date(time.time())}",
    ]
    if status == 401:
        lines.append("www-authenticate: HMAC-SHA256")
    if retry_after is not None:
        lines.append(f"retry-after: {retry_after}")
    if close:
        lines.append("connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body


class HttpError(Exception):
    """A request the gateway answers itself (status, code, message)."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def service_failing(service: str, reason: str, retry_after_s: int) -> HttpError:
    """503 for a failed service with no ready replica: the status reason only (the message quotes the
    app's log lines, which a caller of a public service must not see)."""
    return HttpError(503, "ServiceFailing", f"service {service} has no ready replica ({reason}); its owner "
                     "sees why in the service's status and logs", retry_after=retry_after_s)


_NOT_READY = {
    "ScaledToZero": "it is scaled to 0 replicas",
    "Scaling": "its replicas are starting and none is ready yet",
    "WrongPort": "its app does not listen on the port the platform gives it",
    "Unschedulable": "no host has room for its replicas now",
    "RollingUpdate": "its replicas are being replaced",
    "RolloutStalled": "its new revision is not becoming ready",
    "Deleting": "it is being deleted",
}


def no_replica_ready(service: str, reason: str, waited_s: float, retry_after_s: int) -> HttpError:
    """503 after the queue timeout for a service without a ready replica, saying why in caller-safe words
    (the status reason, never the message, which may quote the app's output)."""
    why = _NOT_READY.get(reason, f"it is not ready ({reason})" if reason else "none is ready")
    return HttpError(503, "NoReplicaAvailable", f"no replica of service {service} became ready within "
                     f"{waited_s:g} s: {why}; its owner sees why in the service's status", retry_after=retry_after_s)


def after_upgrade(data: bytes | memoryview, exc: Exception) -> bytes:
    """The bytes of ``data`` behind the message llhttp stopped at (``HttpParserUpgrade`` carries the offset)."""
    return bytes(data[exc.args[0]:]) if exc.args and isinstance(exc.args[0], int) else b""
