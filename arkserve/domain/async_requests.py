"""Asynchronous inference, the pure parts shared by gateway, dispatcher and API: the stored submission, ids,
the secrets derived from the master key (the dispatcher's internal token, each user's webhook secret), the
public view of a stored request, and which callback URLs are allowed (SSRF rules).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit


@dataclass
class Submission:
    """A request to store: everything the dispatcher needs to send it again later."""

    id: str
    service: str
    user_id: int | None
    access_key: str
    method: str
    path: str
    headers: list[list[str]]
    callback_url: str | None
    body: bytes = b""  # when the body was small enough to stay in memory
    body_file: IO[bytes] | None = field(default=None, repr=False)  # else the spooled temp file, rewound
    body_size: int = 0


@dataclass(frozen=True)
class ResultRefusal:
    """Why a result cannot be given (yet): the gateway answers it as its own error, with the exchange's request id
    (not the asynchronous request's id, which the URL already holds)."""

    status: int
    code: str
    message: str


class SubmitRefused(Exception):
    """A submission the queue will not store, for a reason of the client's own (not the store being away): the
    gateway answers ``status``, ``code`` and ``message`` (with ``Retry-After`` when given) instead of 503."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def new_id() -> str:
    return "ar_" + secrets.token_hex(16)


def internal_token(master_key: bytes) -> bytes:
    """What the dispatcher shows the gateway (``X-Ark-Internal``): only holders of the master key know it."""
    return hmac.new(master_key, b"arkserve-async-internal", hashlib.sha256).hexdigest().encode("ascii")


def webhook_secret(master_key: bytes, user_id: int) -> str:
    """A user's webhook secret (callbacks are signed with it; ``arkserve.sdk.webhooks.verify`` checks them)."""
    mac = hmac.new(master_key, b"arkserve-webhook:%d" % user_id, hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def service_webhook_secret(master_key: bytes, service: str, created_at: float) -> str:
    """The secret that signs callbacks of a public service's anonymous requests: one per service, shown to its
    owner only. Not the owner's own secret, or a stranger could have callbacks signed as the owner's sent to any
    allowed URL. The service's creation time (microseconds) is part of it: a later service of the same name, even
    the same owner's, has another one."""
    mac = hmac.new(master_key, b"arkserve-webhook-service:%s:%d" % (service.encode(), round(created_at * 1e6)),
                   hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")


def public_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What its owner sees of a stored request (no body, no lease)."""
    result = None
    if row.get("result_status") is not None:
        result = {"status": row["result_status"], "headers": row.get("result_headers") or [],
                  "size": row.get("result_size") or 0}
    return {"id": row["id"], "service": row["service"], "status": row["status"], "method": row["method"],
            "path": row["path"], "created_at": row["created_at"], "started_at": row.get("started_at"),
            "finished_at": row.get("finished_at"), "expires_at": row.get("expires_at"),
            "attempts": row.get("attempts", 0), "error": row.get("error"), "result": result,
            "callback": None if not row.get("callback_url") else {
                "url": row["callback_url"], "state": row.get("callback_state"),
                "attempts": row.get("callback_attempts", 0)}}


def allowed_hosts(setting: str) -> frozenset[str]:
    return frozenset(h.strip().lower().strip("[]") for h in setting.split(",") if h.strip())


def callback_refusal(url: str, allowed: Iterable[str]) -> str | None:
    """Why ``url`` may not be a callback, judged without DNS (the dispatcher checks the resolved addresses too):
    http(s) only, a host, no credentials, no spaces nor control characters (``urlsplit`` silently drops TAB, CR
    and LF, which an HTTP client refuses: the URL judged would not be the URL called); an IP literal that is
    loopback, private, link-local, multicast or unspecified only when named in ``asyncq.callback_hosts``;
    ``localhost`` likewise."""
    if len(url) > 2048:
        return "the callback URL is longer than 2048 characters"
    if any(c <= " " or "\x7f" <= c <= "\x9f" for c in url):
        return "the callback URL may not contain spaces or control characters (encode them: %20, %09)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"the callback URL is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "the callback URL must be http:// or https://"
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return "the callback URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the callback URL may not carry credentials"
    if port == 0:
        return "the callback URL's port must not be 0"
    if host in set(allowed):
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "callbacks to localhost are refused (allow it with ARKSERVE_ASYNC_CALLBACK_HOSTS)"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when the callback is sent
    return address_refusal(ip, host)


def address_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> str | None:
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_unspecified
            or ip.is_reserved or not ip.is_global):  # not global: e.g. 100.64.0.0/10, where clouds keep metadata
        return (f"callbacks to {host} ({ip}: not a public address) are refused (allow the host with "
                "ARKSERVE_ASYNC_CALLBACK_HOSTS)")
    return None
