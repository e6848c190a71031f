"""The ark AK/SK request signature: a pure signer and verifier (wire contract ``docs/spec/ark-hmac.md``).

This module owns every byte of the scheme: the ``date`` format, the content hash, the string to
sign, the ``Authorization`` header (building and parsing it), the HMAC, the skew window and the
error codes a failed check maps to. It does no I/O and imports only the standard library, so the
gateway (data plane), the control-plane API and the SDK all share the one implementation.

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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hashlib import _Hash

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

SCHEME = "HMAC-SHA256"
DEFAULT_SKEW_S = 900
EMPTY_CONTENT_HASH = base64.b64encode(hashlib.sha256(b"").digest()).decode("ascii")
# The three headers every signature covers, in the order the reference client lists them.
SIGNED_HEADERS: tuple[str, ...] = ("date", "host", "x-ark-content-sha256")
_SIGNED_HEADERS_VALUE = ";".join(SIGNED_HEADERS)
_REQUIRED = frozenset(SIGNED_HEADERS)

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DATE_LEN = len("Tue, 24 Nov 2026 06:00:00 GMT")
_DIGITS_TO_9 = bytes.maketrans(b"0123456789", b"9999999999")
# base64 of 32 bytes is 43 characters + "=": the last character carries 4 bits of data and 2 zero
# bits, so only these 16 letters are canonical there (others decode to the same bytes, which would
# let a one-character change of the header pass).
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CANONICAL_LAST_OF_32 = frozenset(_B64_ALPHABET[::4])


# --------------------------------------------------------------------------------------------- errors


class SignatureError(Exception):
    """A request failed authentication; ``code`` and ``status`` come from the spec's error table.

    ``message`` is safe to send to the client: it never contains the expected signature and never
    says whether an access key exists.
    """

    code: ClassVar[str] = "SignatureError"
    status: ClassVar[int] = 401

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MissingAuthorization(SignatureError):
    code = "MissingAuthorization"


class MalformedAuthorization(SignatureError):
    code = "MalformedAuthorization"


class InvalidDate(SignatureError):
    code = "InvalidDate"


class RequestExpired(SignatureError):
    code = "RequestExpired"


class MissingSignedHeader(SignatureError):
    code = "MissingSignedHeader"


class InvalidCredential(SignatureError):
    code = "InvalidCredential"


class SignatureMismatch(SignatureError):
    code = "SignatureMismatch"


class ContentHashMismatch(SignatureError):
    code = "ContentHashMismatch"


class AccessDenied(SignatureError):
    code = "AccessDenied"
    status = 403


# ----------------------------------------------------------------------------------------------- date


def format_date(ts: float) -> str:
    """``strftime("%a, %d %b %Y %H:%M:%S GMT")`` in UTC with English names, independent of locale."""
    t = time.gmtime(ts)
    return (
        f"{_DAY_NAMES[t.tm_wday]}, {t.tm_mday:02d} {_MONTH_NAMES[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@lru_cache(maxsize=64)
def _day(prefix: str) -> int:
    """``"Tue, 24 Nov 2026"`` (digits already checked) -> days since 1970-01-01; the weekday must agree."""
    month = _MONTHS.get(prefix[8:11])
    if month is None:
        raise InvalidDate(prefix)
    day, year = int(prefix[5:7]), int(prefix[12:16])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        raise InvalidDate(prefix)
    days = _days_from_civil(year, month, day)
    if _DAY_NAMES[(days + 3) % 7] != prefix[:3]:  # 1970-01-01 was a Thursday
        raise InvalidDate(prefix)
    return days


@lru_cache(maxsize=512)
def _parse_date(value: str) -> float:
    # Exactly "Www, DD Mmm YYYY HH:MM:SS GMT" (29 characters, ASCII digits); anything else is rejected.
    # One bytes.translate() maps every digit to "9", so two comparisons check all the separators and
    # digit positions; the calendar part is cached per day, so a date the cache has not seen yet
    # (a new second) costs little more than the time-of-day arithmetic.
    if len(value) != _DATE_LEN or not value.isascii():
        raise InvalidDate(_bad_date_message(value))
    shape = value.encode("ascii").translate(_DIGITS_TO_9)
    if shape[3:8] != b", 99 " or shape[11:] != b" 9999 99:99:99 GMT":
        raise InvalidDate(_bad_date_message(value))
    try:
        days = _day(value[:16])
    except InvalidDate:
        raise InvalidDate(_bad_date_message(value)) from None
    hour, minute, second = int(value[17:19]), int(value[20:22]), int(value[23:25])
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidDate(_bad_date_message(value))
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def _bad_date_message(value: str) -> str:
    shown = value if len(value) <= 64 else value[:64] + "..."
    return f"date header {shown!r} is not of the form 'Tue, 24 Nov 2026 06:00:00 GMT' (UTC, English names)"


def parse_date(value: str) -> float:
    """Parse the fixed ``date`` format strictly into a POSIX timestamp; raise :class:`InvalidDate`."""
    if not value:
        raise InvalidDate("date header is missing or empty")
    return _parse_date(value)


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


@lru_cache(maxsize=4096)
def _pads(secret: bytes) -> tuple[_Hash, _Hash]:
    # RFC 2104 with the inner and outer key pads hashed once per key: a request then costs two
    # hash-state copies instead of a full HMAC set-up (less than half the time of hmac.new()).
    if len(secret) > _SHA256_BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_SHA256_BLOCK, b"\0")
    return (
        hashlib.sha256(secret.translate(_IPAD)),
        hashlib.sha256(secret.translate(_OPAD)),
    )


_SHA256_BLOCK = 64
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _mac(secret: bytes, string_to_sign: str) -> bytes:
    """HMAC-SHA256 of the UTF-8 string (surrogatepass: no ``str`` can make the encoding raise)."""
    return _mac_bytes(secret, string_to_sign.encode("utf-8", "surrogatepass"))


def _mac_bytes(secret: bytes, data: bytes) -> bytes:
    inner_pad, outer_pad = _pads(secret if type(secret) is bytes else bytes(secret))  # cache key: hashable
    inner = inner_pad.copy()
    inner.update(data)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.digest()


def signature(secret: bytes, string_to_sign: str) -> str:
    """``base64(HMAC-SHA256(secret, string_to_sign))``."""
    return base64.b64encode(_mac(secret, string_to_sign)).decode("ascii")


def authorization_header(access_key: str, sig: str) -> str:
    """The ``Authorization`` value for an access key and a base64 signature."""
    return f"{SCHEME} Credential={access_key}&SignedHeaders={_SIGNED_HEADERS_VALUE}&Signature={sig}"


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
class ParsedAuthorization:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: bytes


_MALFORMED_SHAPE = (
    "Authorization must be 'HMAC-SHA256 Credential=<AK>&SignedHeaders=date;host;x-ark-content-sha256"
    "&Signature=<base64>'"
)


_FAST_PREFIX = f"{SCHEME} Credential="
_FAST_MIDDLE = f"&SignedHeaders={_SIGNED_HEADERS_VALUE}&Signature="
_BAD_SIGNATURE = "Signature must be the standard base64 of a 32-byte HMAC-SHA256"


def _parse(value: str | None) -> tuple[str, tuple[str, ...], bytes]:
    if value is None:
        raise MissingAuthorization("Authorization header is missing")
    # Fast path: the exact shape the reference client sends, with a plain access key.
    if value.startswith(_FAST_PREFIX):
        i = value.find(_FAST_MIDDLE, len(_FAST_PREFIX))
        if i > len(_FAST_PREFIX):
            access_key = value[len(_FAST_PREFIX) : i]
            if access_key.isalnum() and access_key.isascii():
                return access_key, SIGNED_HEADERS, _decode_signature(value[i + len(_FAST_MIDDLE) :])
    return _parse_general(value)


def _decode_signature(text: str) -> bytes:
    if len(text) != 44 or text[43] != "=" or text[42] not in _CANONICAL_LAST_OF_32:
        raise MalformedAuthorization(_BAD_SIGNATURE)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        raise MalformedAuthorization(_BAD_SIGNATURE) from None


def _parse_general(value: str) -> tuple[str, tuple[str, ...], bytes]:
    scheme, sep, params = value.partition(" ")
    if scheme != SCHEME:
        if not value.strip():
            raise MissingAuthorization("Authorization header is empty")
        raise MissingAuthorization(f"Authorization scheme must be {SCHEME}")
    params = params.lstrip(" ")
    if not sep or not params:
        raise MalformedAuthorization(f"{_MALFORMED_SHAPE}; the parameters are missing")
    parts = params.split("&")
    if len(parts) != 3:
        raise MalformedAuthorization(f"{_MALFORMED_SHAPE}; expected exactly three '&'-separated parameters")
    fields: dict[str, str] = {}
    for part in parts:
        name, eq, val = part.partition("=")
        if not eq or not val or name in fields:
            raise MalformedAuthorization(f"{_MALFORMED_SHAPE}; a parameter is empty, repeated or has no '='")
        fields[name] = val
    access_key = fields.get("Credential")
    names_value = fields.get("SignedHeaders")
    sig_text = fields.get("Signature")
    if access_key is None or names_value is None or sig_text is None:
        raise MalformedAuthorization(f"{_MALFORMED_SHAPE}; Credential, SignedHeaders or Signature is missing")
    if not access_key.isascii() or not access_key.isprintable() or " " in access_key:
        raise MalformedAuthorization("Credential must be a printable ASCII access key")
    if names_value == _SIGNED_HEADERS_VALUE:
        signed_headers = SIGNED_HEADERS
    else:
        signed_headers = tuple(names_value.split(";"))  # names are lower-case, compared exactly
        if "" in signed_headers or len(set(signed_headers)) != len(signed_headers):
            raise MalformedAuthorization("SignedHeaders must be ';'-separated header names, each listed once")
    return access_key, signed_headers, _decode_signature(sig_text)


def parse_authorization(value: str | None) -> ParsedAuthorization:
    """Parse ``Authorization``; raise :class:`MissingAuthorization` or :class:`MalformedAuthorization`.

    The scheme must be exactly ``HMAC-SHA256`` (another scheme, or another spelling, counts as no
    ark authorization at all). The three parameters must each appear once, non-empty, joined by
    single ``&``; the signature must be canonical standard base64 of exactly 32 bytes.
    """
    return ParsedAuthorization(*_parse(value))


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
    expected = _mac(secret, string_to_sign(method, url, date, host, claimed))
    if not hmac.compare_digest(expected, sig):
        raise SignatureMismatch(
            f"the signature does not match the request (access key {access_key}); the most common cause is a "
            "wrong or mistyped secret key for that access key; otherwise sign METHOD, the raw path and query, "
            "and the date, host and x-ark-content-sha256 headers exactly as sent"
        )
    return Verified(access_key, claimed, ts)


_WIRE_PREFIX = _FAST_PREFIX.encode("ascii")
_WIRE_MIDDLE = _FAST_MIDDLE.encode("ascii")
_WIRE_CANONICAL_LAST = frozenset(_B64_ALPHABET[::4].encode("ascii"))


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
    if secret is None or not hmac.compare_digest(_mac_bytes(secret, data), sig):
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
