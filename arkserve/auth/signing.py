"""The ark AK/SK request signature: a pure signer and verifier (wire contract ``docs/spec/ark-hmac.md``).

This module owns the scheme's core: the content hash, the string to sign, signing a request's
headers, the skew window and the verifiers. The rest of the scheme sits next to it, one noun per
module, and every public name of it is re-exported here, so ``from arkserve.auth.signing import ...``
stays the one import callers need: :mod:`~arkserve.auth.httpdate` (the ``date`` format),
:mod:`~arkserve.auth.authorization` (the ``Authorization`` header, building and parsing it),
:mod:`~arkserve.auth.mac` (the HMAC-SHA256 with cached key pads) and
:mod:`~arkserve.auth.signature_errors` (the error codes a failed check maps to). None of them does
I/O or imports more than the standard library, so the gateway (data plane), the control-plane API
and the SDK all share the one implementation.

Verification is split in two on purpose: :func:`verify` checks the headers (the gateway can run it
before it starts streaming a body) and :func:`check_payload` checks the claimed content hash against
the hash of the body once the body has been read. :func:`verify_wire` is the gateway's fast path for
the common case, on raw header bytes; it falls back to :func:`verify` for anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Names the verifiers use are bound here as module globals (not looked up through another module
# per call), so the split costs the hot path nothing.
from arkserve.auth.authorization import (
    _SIGNED_HEADERS_VALUE,
    _WIRE_CANONICAL_LAST,
    _WIRE_MIDDLE,
    _WIRE_PREFIX,
    SCHEME,
    SIGNED_HEADERS,
    ParsedAuthorization,
    _parse,
    authorization_header,
    parse_authorization,
)
from arkserve.auth.httpdate import _parse_date, format_date, parse_date
from arkserve.auth.mac import mac, mac_bytes
from arkserve.auth.signature_errors import (
    AccessDenied,
    ContentHashMismatch,
    InvalidCredential,
    InvalidDate,
    MalformedAuthorization,
    MissingAuthorization,
    MissingSignedHeader,
    RequestExpired,
    SignatureError,
    SignatureMismatch,
)

__all__ = [
    "DEFAULT_SKEW_S",
    "EMPTY_CONTENT_HASH",
    "SCHEME",
    "SIGNED_HEADERS",
    "AccessDenied",
    "ContentHashMismatch",
    "InvalidCredential",
    "InvalidDate",
    "MalformedAuthorization",
    "MissingAuthorization",
    "MissingSignedHeader",
    "ParsedAuthorization",
    "RequestExpired",
    "SignatureError",
    "SignatureMismatch",
    "Verified",
    "authorization_header",
    "check_payload",
    "content_hash",
    "decode_secret",
    "format_date",
    "parse_authorization",
    "parse_date",
    "sign_headers",
    "signature",
    "string_to_sign",
    "verify",
    "verify_wire",
]

DEFAULT_SKEW_S = 900
EMPTY_CONTENT_HASH = base64.b64encode(hashlib.sha256(b"").digest()).decode("ascii")
_REQUIRED = frozenset(SIGNED_HEADERS)


# ------------------------------------------------------------------------------------------- signing


def content_hash(body: bytes) -> str:
    """``base64(sha256(body))``, the value of ``x-ark-content-sha256``."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def decode_secret(secret_key: str) -> bytes:
    """The HMAC key of a secret key: its standard base64 decoded; ``ValueError`` when it is not base64."""
    try:
        key = base64.b64decode(secret_key, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError("secret key is not valid standard base64 (with padding)") from exc
    if not key:
        raise ValueError("secret key is empty (expected standard base64 of the key bytes)")
    return key


def string_to_sign(method: str, url: str, date: str, host: str, content_hash: str) -> str:
    """``METHOD \\n URL \\n DATE;HOST;CONTENT_HASH``, every part verbatim.

    The signer upper-cases the method before calling this; the verifier passes the method exactly as
    received (HTTP methods are case-sensitive, so ``post`` does not verify a signature over ``POST``).
    """
    return f"{method}\n{url}\n{date};{host};{content_hash}"


def signature(secret: bytes, string_to_sign: str) -> str:
    """``base64(HMAC-SHA256(secret, string_to_sign))``."""
    return base64.b64encode(mac(secret, string_to_sign)).decode("ascii")


def sign_headers(
    *, method: str, url: str, host: str, access_key: str, secret_key: str, body: bytes | None, now: float
) -> dict[str, str]:
    """The three headers that sign a request (``body=None`` signs an unsigned payload: the empty hash).

    ``url`` is the raw path plus ``?query`` exactly as it goes on the wire, ``host`` the ``Host``
    header exactly as sent (with ``:port`` when it is not the scheme's default).
    """
    date = format_date(now)
    body_hash = EMPTY_CONTENT_HASH if body is None else content_hash(body)
    sig = signature(decode_secret(secret_key), string_to_sign(method.upper(), url, date, host, body_hash))
    return {
        "date": date,
        "x-ark-content-sha256": body_hash,
        "Authorization": authorization_header(access_key, sig),
    }


# --------------------------------------------------------------------------------------------- verify


@dataclass(frozen=True, slots=True)
class Verified:
    access_key: str
    content_hash: str  # the claimed x-ark-content-sha256; check it against the body with check_payload()
    signed_at: float = field(default=0.0, compare=False)  # the date header as a POSIX timestamp


def verify(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    lookup: Callable[[str], bytes | None],
    now: float,
    skew_s: int = DEFAULT_SKEW_S,
) -> Verified:
    """Check a request's signature headers; return who signed it or raise a :class:`SignatureError`.

    ``headers`` maps lower-case names to raw values as received; ``url`` is the raw path and
    ``?query`` as received. ``lookup(access_key)`` returns the decoded secret of an active key, or
    ``None`` for an unknown, disabled or deleted one. Checks run in this order: Authorization shape,
    signed-header list and presence, date format, skew window, credential, signature. The body is
    not looked at: call :func:`check_payload` once it has been read.
    """
    access_key, signed_headers, sig = _parse(headers.get("authorization"))
    if signed_headers is not SIGNED_HEADERS:
        listed = frozenset(signed_headers)
        missing = _REQUIRED - listed
        if missing:
            raise MissingSignedHeader(f"SignedHeaders must list {', '.join(sorted(missing))}")
        extra = listed - _REQUIRED
        if extra:
            raise MalformedAuthorization(
                f"SignedHeaders lists {', '.join(sorted(extra))}; only {_SIGNED_HEADERS_VALUE} can be signed"
            )
    date = headers.get("date")
    host = headers.get("host")
    claimed = headers.get("x-ark-content-sha256")
    if date is None or host is None or claimed is None:
        absent = [n for n, v in (("date", date), ("host", host), ("x-ark-content-sha256", claimed)) if v is None]
        raise MissingSignedHeader(f"signed header(s) {', '.join(absent)} missing from the request")
    ts = parse_date(date)
    if not -skew_s <= now - ts <= skew_s:
        raise RequestExpired(
            f"request date {date} is outside the allowed window of ±{skew_s} s around the server time "
            f"{format_date(now)}; correct the client clock"
        )
    secret = lookup(access_key)
    if secret is None:
        raise InvalidCredential("the access key is not valid (unknown, disabled or deleted)")
    expected = mac(secret, string_to_sign(method, url, date, host, claimed))
    if not hmac.compare_digest(expected, sig):
        raise SignatureMismatch(
            f"the signature does not match the request (access key {access_key}); the most common cause is a "
            "wrong or mistyped secret key for that access key; otherwise sign METHOD, the raw path and query, "
            "and the date, host and x-ark-content-sha256 headers exactly as sent"
        )
    return Verified(access_key, claimed, ts)


def verify_wire(
    method: bytes,
    url: bytes,
    authorization: bytes | None,
    date: bytes | None,
    host: bytes | None,
    claimed: bytes | None,
    lookup: Callable[[str], bytes | None],
    now: float,
    skew_s: int = DEFAULT_SKEW_S,
) -> tuple[str, float] | None:
    """:func:`verify` for the common case, on the raw bytes of a request: ``(access key, date)`` or ``None``.

    A data plane's hot path: no decoding, no dicts, no objects. It accepts only requests in the exact
    shape the reference client sends (the canonical ``Authorization`` with an alphanumeric access key,
    every signed byte ASCII) whose signature is good. ``None`` says nothing about why: call
    :func:`verify` on the decoded values for the verdict and the error. For ASCII, the raw bytes and
    the UTF-8 of the decoded text are the same bytes, so whatever this accepts :func:`verify` accepts
    too (``tests/auth/test_signing_wire.py`` compares the two on the vectors and every one-byte change).
    """
    if authorization is None or date is None or host is None or claimed is None:
        return None
    if not authorization.startswith(_WIRE_PREFIX):
        return None
    i = authorization.find(_WIRE_MIDDLE, len(_WIRE_PREFIX))
    sig_text = authorization[i + len(_WIRE_MIDDLE) :]
    access_key = authorization[len(_WIRE_PREFIX) : i]
    if (i <= len(_WIRE_PREFIX) or len(sig_text) != 44 or sig_text[43] != 61  # "="
            or sig_text[42] not in _WIRE_CANONICAL_LAST or not access_key.isalnum()):  # bytes: ASCII only
        return None
    data = b"".join((method, b"\n", url, b"\n", date, b";", host, b";", claimed))
    if not data.isascii():
        return None
    try:
        ts = _parse_date(date.decode("ascii"))
        sig = binascii.a2b_base64(sig_text, strict_mode=True)
    except (SignatureError, ValueError):
        return None
    if not -skew_s <= now - ts <= skew_s:
        return None
    ak = access_key.decode("ascii")
    secret = lookup(ak)
    if secret is None or not hmac.compare_digest(mac_bytes(secret, data), sig):
        return None
    return ak, ts


def check_payload(claimed_hash: str, body_hash: str, body_length: int, *, require_signed: bool = False) -> bool:
    """Check the claimed content hash against the received body.

    Return ``True`` for a signed payload (the claim is the body's hash), ``False`` for an accepted
    unsigned payload (the claim is the empty hash, the body is not empty, and signed payloads are
    not required); raise :class:`ContentHashMismatch` otherwise.
    """
    claimed = claimed_hash.encode("utf-8", "surrogatepass")
    if hmac.compare_digest(claimed, body_hash.encode("utf-8", "surrogatepass")):
        return True
    if body_length > 0 and hmac.compare_digest(claimed, _EMPTY_HASH_BYTES):
        if require_signed:
            raise ContentHashMismatch(
                "this service requires a signed payload: x-ark-content-sha256 must be the body's hash"
            )
        return False
    raise ContentHashMismatch("x-ark-content-sha256 is not the base64 SHA-256 of the request body")


_EMPTY_HASH_BYTES = EMPTY_CONTENT_HASH.encode("ascii")
