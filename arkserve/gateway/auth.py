"""Thin glue from a parsed request to :func:`arkserve.auth.signing.verify`.

The common case is checked on the raw bytes (:func:`arkserve.auth.signing.verify_wire`); otherwise
the header values are decoded exactly as received (UTF-8, undecodable bytes kept as escapes so they
simply fail to match) for :func:`~arkserve.auth.signing.verify`. The secret lookup is a prebuilt
dict's ``get`` from the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

from arkserve.auth.signing import EMPTY_CONTENT_HASH, AccessDenied, verify, verify_wire
from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute
from arkserve.gateway.http import METHOD_NAMES


class Decision:
    """Who called and what the body needs: ``spool`` means hash it before forwarding."""

    __slots__ = ("access_key", "claimed", "head_line", "require_signed", "signed_at")

    def __init__(self, access_key: str, claimed: str, require_signed: bool, signed_at: float = 0.0) -> None:
        self.access_key = access_key
        self.claimed = claimed
        self.require_signed = require_signed
        self.signed_at = signed_at  # the request's date (the verified-signature cache re-checks the window)
        self.head_line = b"x-ark-access-key: " + access_key.encode() + b"\r\n"  # what the replica is told

    def must_spool(self, has_body: bool) -> bool:
        """Unsigned payload (empty hash with a body) streams; everything else is checked first."""
        if not has_body:
            return False
        return self.claimed != EMPTY_CONTENT_HASH or self.require_signed


def authenticate(snapshot: RoutingSnapshot, lookup: Callable[[str], bytes | None], route: ServiceRoute,
                 method: bytes, url: bytes, authorization: bytes | None, date: bytes | None, host: bytes,
                 claimed: bytes | None, now: float, skew_s: int) -> Decision:
    """Verify the signature headers (raw bytes as received) and the key's access; raise ``SignatureError``s.

    The common case takes :func:`verify_wire` on the bytes; anything else (a failure, another shape
    of ``Authorization``, non-ASCII bytes) is decoded and goes through :func:`verify`, which gives the
    verdict and the error.
    """
    wire = verify_wire(method, url, authorization, date, host, claimed, lookup, now, skew_s)
    if wire is not None:
        access_key, signed_at = wire
        claimed_s = claimed.decode("ascii")  # type: ignore[union-attr]  # verify_wire checked it is there
    else:
        headers = {"host": _dec(host)}
        for name, value in (("authorization", authorization), ("date", date), ("x-ark-content-sha256", claimed)):
            if value is not None:
                headers[name] = _dec(value)
        v = verify(method=METHOD_NAMES.get(method) or method.decode("latin-1"), url=_dec(url), headers=headers,
                   lookup=lookup, now=now, skew_s=skew_s)
        access_key, claimed_s, signed_at = v.access_key, v.content_hash, v.signed_at
    key: KeyEntry | None = snapshot.keys.get(access_key)
    if key is None:  # lookup said yes, so the snapshot has it; be safe anyway
        raise AccessDenied("this access key may not call this service")
    if not snapshot.may_call(key, route):
        raise AccessDenied(f"this access key may not call service {route.name!r}")
    return Decision(access_key, claimed_s, route.require_signed_payload or key.require_signed_payload, signed_at)


def _dec(v: bytes) -> str:
    try:
        return v.decode()
    except UnicodeDecodeError:
        return v.decode("utf-8", "surrogateescape")
