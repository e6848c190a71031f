"""Callbacks: POST a finished request's result to the URL its client gave, signed with the webhook signature
(``arkserve.sdk.webhooks``), with the SSRF rules of docs/async.md.

The gateway refused URLs that are not http(s), carry credentials, or name a loopback/private/link-local address
or ``localhost`` (unless allowed by ``asyncq.callback_hosts``). Here, before each attempt, the host name is
resolved and every address must pass the same rule; a plain-http callback is then sent to the checked address
(the name goes in ``Host``), so a DNS answer that changes between the check and the connection cannot redirect
it. An https callback connects by name and its certificate must verify, which a rebinding to an internal
address cannot satisfy. Redirects are not followed.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from arkserve.domain.async_requests import address_refusal, callback_refusal
from arkserve.sdk.webhooks import sign


class CallbackRefused(Exception):
    """The URL may not be called (permanent: no retry)."""


def payload(row: dict[str, Any], result_body: bytes | None) -> bytes:
    """The callback's JSON body: the request's id, service, status, error and result (body in base64)."""
    result = None
    if row.get("result_status") is not None:
        result = {"status": row["result_status"], "headers": row.get("result_headers") or [],
                  "body_base64": base64.b64encode(result_body or b"").decode("ascii")}
    doc = {"id": row["id"], "service": row["service"], "status": row["status"], "error": row.get("error"),
           "created_at": row["created_at"], "finished_at": row.get("finished_at"), "result": result}
    return json.dumps(doc, separators=(",", ":")).encode()


def target(url: str, allowed: frozenset[str]) -> tuple[str, dict[str, str]]:
    """The URL to connect to and extra headers, after the SSRF checks (raises :class:`CallbackRefused`)."""
    why = callback_refusal(url, allowed)
    if why is not None:
        raise CallbackRefused(why)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in allowed:
        return url, {}
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for ip in addresses:
        why = address_refusal(ip, host)
        if why is not None:
            raise CallbackRefused(why)
    if parts.scheme == "https" or not addresses:
        return url, {}
    ip = addresses[0]
    netloc = (f"[{ip}]" if ip.version == 6 else str(ip)) + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")), {"host": parts.netloc}


def deliver(client: httpx.Client, row: dict[str, Any], secret: str, body: bytes,
            allowed: frozenset[str]) -> tuple[int, str]:
    """One attempt: (HTTP status or 0, error). Raises :class:`CallbackRefused` for a URL that is not allowed."""
    url, extra = target(row["callback_url"], allowed)
    headers = {"content-type": "application/json", "user-agent": "arkserve-callback", **extra,
               **sign(secret, row["id"], body, time.time())}
    resp = client.post(url, content=body, headers=headers)
    return resp.status_code, "" if resp.status_code < 300 else f"the callback answered {resp.status_code}"


def shown(url: str) -> str:
    """The callback URL as the request log shows it: scheme, host and port only. Its path and query often hold
    the receiver's secret (a webhook token), and logs never show secrets; the request's owner sees the whole
    URL on the request itself (``arkserve async get``)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return origin + ("/…" if parts.path.strip("/") or parts.query else "/")


def backoff(attempt: int) -> float:
    """Seconds before the next attempt: 1, 2, 4, … at most 300."""
    return float(min(300, 2 ** max(0, attempt - 1)))
