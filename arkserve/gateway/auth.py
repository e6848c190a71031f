"""Thin glue from a parsed request to :func:`arkserve.auth.signing.verify`.

The header values are decoded exactly as received (UTF-8, undecodable bytes kept as escapes so
they simply fail to match); the secret lookup is a prebuilt dict's ``get`` from the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

from arkserve.auth.signing import EMPTY_CONTENT_HASH, AccessDenied, verify
from arkserve.domain.routing import KeyEntry, RoutingSnapshot, ServiceRoute

_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")}


class Decision:
    """Who called and what the body needs: ``spool`` means hash it before forwarding."""

    __slots__ = ("access_key", "claimed", "require_signed", "signed_at")

    def __init__(self, access_key: str, claimed: str, require_signed: bool, signed_at: float = 0.0) -> None:
        self.access_key = access_key
        self.claimed = claimed
        self.require_signed = require_signed
        self.signed_at = signed_at  # the request's date (the verified-signature cache re-checks the window)

    def must_spool(self, has_body: bool) -> bool:
        """Unsigned payload (empty hash with a body) streams; everything else is checked first."""
        if not has_body:
            return False
        return self.claimed != EMPTY_CONTENT_HASH or self.require_signed


def authenticate(snapshot: RoutingSnapshot, lookup: Callable[[str], bytes | None], route: ServiceRoute,
                 method: bytes, url: bytes, headers: dict[str, str], now: float, skew_s: int) -> Decision:
    """Verify the signature headers and the key's access; raise ``SignatureError`` subclasses."""
    try:
        url_s = url.decode()
    except UnicodeDecodeError:
        url_s = url.decode("utf-8", "surrogateescape")
    v = verify(method=_METHODS.get(method) or method.decode("latin-1"), url=url_s, headers=headers,
               lookup=lookup, now=now, skew_s=skew_s)
    key: KeyEntry | None = snapshot.keys.get(v.access_key)
    if key is None:  # lookup said yes, so the snapshot has it; be safe anyway
        raise AccessDenied("this access key may not call this service")
    if not snapshot.may_call(key, route):
        raise AccessDenied(f"this access key may not call service {route.name!r}")
    return Decision(v.access_key, v.content_hash, route.require_signed_payload or key.require_signed_payload,
                    v.signed_at)
