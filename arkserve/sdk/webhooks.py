"""Callbacks of asynchronous requests: the platform's webhook signature (sign, verify). Standard library only.

A callback is ``POST <callback url>`` with a JSON body and three headers::

    X-Ark-Webhook-Id:        ar_0123…            (the asynchronous request's id)
    X-Ark-Webhook-Timestamp: 1764536400          (POSIX seconds when this attempt was signed)
    X-Ark-Webhook-Signature: v1=<base64 HMAC-SHA256>

The signature is HMAC-SHA256, keyed with the UTF-8 bytes of the user's webhook secret (``whsec_…``, shown by
``arkserve async secret``), over ``<id> "." <timestamp> "." <body bytes>``, in standard base64. Several
``v1=`` values separated by spaces may appear; one match is enough. :func:`verify` checks the signature in
constant time and that the timestamp is within ``tolerance_s`` of now, and returns the parsed body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

ID_HEADER = "X-Ark-Webhook-Id"
TIMESTAMP_HEADER = "X-Ark-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Ark-Webhook-Signature"
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The callback is not signed by the platform with this secret (or is too old)."""


def signature(secret: str, request_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{request_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + base64.b64encode(mac.digest()).decode("ascii")


def sign(secret: str, request_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers of one callback attempt."""
    ts = int(time.time() if now is None else now)
    return {ID_HEADER: request_id, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, request_id, ts, body)}


def _header(headers: Mapping[str, str], name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    raise WebhookVerificationError(f"the {name} header is missing")


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> dict[str, Any]:
    """Check a received callback (its headers and raw body bytes); return the body parsed as JSON.

    Raises :class:`WebhookVerificationError` when a header is missing, the timestamp is outside ``tolerance_s``
    or no signature matches.
    """
    request_id = _header(headers, ID_HEADER)
    try:
        ts = int(_header(headers, TIMESTAMP_HEADER))
    except ValueError:
        raise WebhookVerificationError("the timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookVerificationError(f"the timestamp is {current - ts:.0f} s away from now (tolerance "
                                       f"{tolerance_s:g} s)")
    expected = signature(secret, request_id, ts, body).encode("ascii")
    offered = [s.encode("ascii", "replace") for s in _header(headers, SIGNATURE_HEADER).split() if s.startswith("v1=")]
    if not any(hmac.compare_digest(expected, s) for s in offered):
        raise WebhookVerificationError("no signature matches: wrong secret, or the body or id was changed")
    doc: dict[str, Any] = json.loads(body)
    if doc.get("id") != request_id:
        raise WebhookVerificationError("the body's id is not the signed id")
    return doc
