"""The ``Authorization`` header of the ark AK/SK signature: its scheme, its shape, building and parsing it.

This module owns ``HMAC-SHA256 Credential=<AK>&SignedHeaders=date;host;x-ark-content-sha256&Signature=<b64>``:
the scheme name, the list of signed headers, the canonical base64 of the signature, and the errors
(:class:`MissingAuthorization`, :class:`MalformedAuthorization`) a malformed header raises. It imports
only the standard library. :mod:`arkserve.auth.signing` re-exports the public names and its
verifiers call :func:`_parse` and use the ``_WIRE_*`` byte constants directly.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from arkserve.auth.signature_errors import MalformedAuthorization, MissingAuthorization

__all__ = ["SCHEME", "SIGNED_HEADERS", "ParsedAuthorization", "authorization_header", "parse_authorization"]

SCHEME = "HMAC-SHA256"
# The three headers every signature covers, in the order the reference client lists them.
SIGNED_HEADERS: tuple[str, ...] = ("date", "host", "x-ark-content-sha256")
_SIGNED_HEADERS_VALUE = ";".join(SIGNED_HEADERS)

# base64 of 32 bytes is 43 characters + "=": the last character carries 4 bits of data and 2 zero
# bits, so only these 16 letters are canonical there (others decode to the same bytes, which would
# let a one-character change of the header pass).
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CANONICAL_LAST_OF_32 = frozenset(_B64_ALPHABET[::4])


def authorization_header(access_key: str, sig: str) -> str:
    """The ``Authorization`` value for an access key and a base64 signature."""
    return f"{SCHEME} Credential={access_key}&SignedHeaders={_SIGNED_HEADERS_VALUE}&Signature={sig}"


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

# The same shape on raw header bytes, for signing.verify_wire.
_WIRE_PREFIX = _FAST_PREFIX.encode("ascii")
_WIRE_MIDDLE = _FAST_MIDDLE.encode("ascii")
_WIRE_CANONICAL_LAST = frozenset(_B64_ALPHABET[::4].encode("ascii"))


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
