"""``verify_wire`` (the gateway's bytes fast path) never accepts what ``verify`` rejects, and takes the common case.

Every comparison decodes the bytes the way the gateway does for ``verify`` (UTF-8, undecodable bytes
as escapes), so a difference between the two paths shows up as a failed assertion here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arkserve.auth import signing as s
from tests.auth.test_signing_vectors import IDS, VECTORS

NOW = 1_795_500_000.0
AK = "AKIDEXAMPLE000000001"
KEY = bytes(range(32))
SK = base64.b64encode(KEY).decode()
FIELDS = ("method", "url", "authorization", "date", "host", "claimed")


def _dec(v: bytes) -> str:
    try:
        return v.decode()
    except UnicodeDecodeError:
        return v.decode("utf-8", "surrogateescape")


def _both(req: dict[str, bytes | None], keys: dict[str, bytes], now: float) -> tuple[Any, Any]:
    """(verify_wire's answer, verify's answer or its error code) for one raw request."""
    wire = s.verify_wire(req["method"], req["url"], req["authorization"], req["date"],  # type: ignore[arg-type]
                         req["host"], req["claimed"], keys.get, now)
    headers = {name: _dec(req[field]) for name, field in  # type: ignore[arg-type]
               (("authorization", "authorization"), ("date", "date"), ("host", "host"),
                ("x-ark-content-sha256", "claimed")) if req[field] is not None}
    try:
        v = s.verify(method=_dec(req["method"]), url=_dec(req["url"]), headers=headers,  # type: ignore[arg-type]
                     lookup=keys.get, now=now)
    except s.SignatureError as exc:
        return wire, exc.code
    return wire, (v.access_key, v.signed_at)


def _raw(v: dict[str, Any]) -> dict[str, bytes | None]:
    h = v["headers"]
    return {"method": v["method"].encode(), "url": v["url"].encode(), "authorization": h["Authorization"].encode(),
            "date": h["date"].encode(), "host": v["host"].encode(), "claimed": h["x-ark-content-sha256"].encode()}


def _changes(b: bytes) -> Iterator[bytes]:
    """Every one-byte substitution by a few neighbours (printable, a control byte, non-ASCII), every deletion."""
    for i, c in enumerate(b):
        for repl in {c ^ 1, c ^ 0x20, 0x41, 0x25, 0x00, 0xC3, 0xFF}:
            if repl != c:
                yield b[:i] + bytes([repl]) + b[i + 1 :]
        yield b[:i] + b[i + 1 :]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_the_vectors_take_the_fast_path(v: dict[str, Any]) -> None:
    keys = {v["access_key"]: s.decode_secret(v["secret_key"])}
    wire, full = _both(_raw(v), keys, s.parse_date(v["date"]))
    assert wire == full == (v["access_key"], s.parse_date(v["date"]))


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_no_one_byte_change_is_accepted_by_the_fast_path_alone(v: dict[str, Any]) -> None:
    keys = {v["access_key"]: s.decode_secret(v["secret_key"])}
    now = s.parse_date(v["date"])
    base = _raw(v)
    tried = 0
    for field in FIELDS:
        for changed in _changes(base[field]):  # type: ignore[arg-type]
            tried += 1
            wire, full = _both({**base, field: changed}, keys, now)
            assert wire is None, f"fast path accepted a change of {field}: {changed!r} (verify: {full})"
            assert isinstance(full, str), f"verify accepted a change of {field}: {changed!r}"
    assert tried > 1500


@pytest.mark.parametrize("v", VECTORS[:1], ids=IDS[:1])
def test_what_the_fast_path_leaves_to_verify(v: dict[str, Any]) -> None:
    keys = {v["access_key"]: s.decode_secret(v["secret_key"])}
    now = s.parse_date(v["date"])
    base = _raw(v)
    # a missing header, another key, out of the window: the fast path says nothing; verify says why
    assert _both({**base, "date": None}, keys, now) == (None, "MissingSignedHeader")
    assert _both(base, {}, now) == (None, "InvalidCredential")
    assert _both(base, keys, now + 901) == (None, "RequestExpired")
    assert _both(base, keys, now + 900)[0] == (v["access_key"], now)
    # another spelling verify accepts (extra spaces after the scheme): verify's answer, not a refusal
    spaced = {**base, "authorization": base["authorization"].replace(b" ", b"   ", 1)}  # type: ignore[union-attr]
    wire, full = _both(spaced, keys, now)
    assert wire is None and full == (v["access_key"], now)


def _signed(method: str, url: str, host: str) -> dict[str, bytes | None]:
    h = s.sign_headers(method=method, url=url, host=host, access_key=AK, secret_key=SK, body=None, now=NOW)
    return {"method": method.upper().encode(), "url": url.encode("utf-8", "surrogatepass"),
            "authorization": h["Authorization"].encode(), "date": h["date"].encode(),
            "host": host.encode("utf-8", "surrogatepass"), "claimed": h["x-ark-content-sha256"].encode()}


@given(method=st.sampled_from(["GET", "POST", "put"]), url=st.text(min_size=1, max_size=30).map(lambda t: "/" + t),
       host=st.text(min_size=1, max_size=20))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_signed_by_the_signer_gets_the_same_verdict(method: str, url: str, host: str) -> None:
    keys = {AK: KEY}
    wire, full = _both(_signed(method, url, host), keys, NOW)
    assert full == (AK, NOW)  # the signer's output always verifies
    ascii_only = (url + host).isascii()
    assert wire == (full if ascii_only else None)  # non-ASCII is left to verify, never decided differently
