"""The shared wire vectors: byte-exact signing, acceptance at their date, rejection of any one-byte change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from arkserve.auth import signing as s
from tests.spec import vectors

VECTORS: list[dict[str, Any]] = vectors()
IDS = [f"v{i + 1}-{v['method']}-{v['url']}" for i, v in enumerate(VECTORS)]


def test_the_shared_vectors_are_there() -> None:
    assert len(VECTORS) >= 3


def _request(v: dict[str, Any]) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in v["headers"].items()}
    headers["host"] = v["host"]
    return {"method": v["method"], "url": v["url"], "headers": headers, "body": v["body"].encode("utf-8")}


def _accepts(
    v: dict[str, Any],
    req: dict[str, Any],
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    require_signed: bool = False,
) -> bool:
    """Run the full server-side pipeline (headers, then body); True when the request is accepted."""
    key = s.decode_secret(secret_key or v["secret_key"])
    keys = {access_key or v["access_key"]: key}
    try:
        verified = s.verify(
            method=req["method"],
            url=req["url"],
            headers=req["headers"],
            lookup=keys.get,
            now=s.parse_date(v["date"]),
        )
        s.check_payload(
            verified.content_hash,
            s.content_hash(req["body"]),
            len(req["body"]),
            require_signed=require_signed,
        )
    except s.SignatureError:
        return False
    return True


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_signer_reproduces_vector(v: dict[str, Any]) -> None:
    body = v["body"].encode("utf-8")
    now = s.parse_date(v["date"])
    assert s.format_date(now) == v["date"]
    sts = s.string_to_sign(v["method"], v["url"], v["date"], v["host"], s.content_hash(body))
    assert sts == v["string_to_sign"]
    headers = s.sign_headers(
        method=v["method"],
        url=v["url"],
        host=v["host"],
        access_key=v["access_key"],
        secret_key=v["secret_key"],
        body=body,
        now=now,
    )
    assert headers == v["headers"]
    assert list(headers) == list(v["headers"])
    # the lower-level pieces agree with the one-call helper
    sig = s.signature(s.decode_secret(v["secret_key"]), sts)
    assert s.authorization_header(v["access_key"], sig) == v["headers"]["Authorization"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_signer_lower_case_method_signs_upper_case(v: dict[str, Any]) -> None:
    headers = s.sign_headers(
        method=v["method"].lower(),
        url=v["url"],
        host=v["host"],
        access_key=v["access_key"],
        secret_key=v["secret_key"],
        body=v["body"].encode("utf-8"),
        now=s.parse_date(v["date"]),
    )
    assert headers == v["headers"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_verifier_accepts_vector_at_its_date(v: dict[str, Any]) -> None:
    req = _request(v)
    verified = s.verify(
        method=req["method"],
        url=req["url"],
        headers=req["headers"],
        lookup={v["access_key"]: s.decode_secret(v["secret_key"])}.get,
        now=s.parse_date(v["date"]),
    )
    assert verified == s.Verified(v["access_key"], v["headers"]["x-ark-content-sha256"])
    assert s.check_payload(verified.content_hash, s.content_hash(req["body"]), len(req["body"])) is True
    assert _accepts(v, req, require_signed=True)


def _one_byte_changes(text: str) -> Iterator[str]:
    """Every substitution of one character by a different printable ASCII one, and every deletion."""
    for i, c in enumerate(text):
        for repl in {chr(ord(c) ^ 1), chr(ord(c) ^ 0x20), "A", "%"}:
            if repl != c and repl.isprintable() and repl.isascii():
                yield text[:i] + repl + text[i + 1 :]
        yield text[:i] + text[i + 1 :]


def _mutations(v: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    base = _request(v)
    for field in ("method", "url"):
        for changed in _one_byte_changes(base[field]):
            yield field, {**base, field: changed}
    for name in ("host", "date", "x-ark-content-sha256", "authorization"):
        for changed in _one_byte_changes(base["headers"][name]):
            yield name, {**base, "headers": {**base["headers"], name: changed}}
    for changed in _one_byte_changes(v["body"]):
        yield "body", {**base, "body": changed.encode("utf-8")}


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_verifier_rejects_every_one_byte_change(v: dict[str, Any]) -> None:
    count = 0
    for field, req in _mutations(v):
        count += 1
        assert not _accepts(v, req), f"accepted a one-byte change of {field}: {req!r}"
    assert count > 300


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_verifier_rejects_one_byte_change_of_keys(v: dict[str, Any]) -> None:
    req = _request(v)
    for ak in _one_byte_changes(v["access_key"]):
        assert not _accepts(v, req, access_key=ak)  # the request names the real AK; the store holds another
    changed_keys = 0
    for sk in _one_byte_changes(v["secret_key"]):
        try:
            s.decode_secret(sk)
        except ValueError:
            continue  # not a valid SK at all (tested elsewhere)
        if s.decode_secret(sk).rstrip(b"\0") == s.decode_secret(v["secret_key"]).rstrip(b"\0"):
            # the same HMAC key: a non-canonical spelling of the same bytes, or the same bytes plus
            # trailing zero bytes (HMAC zero-pads keys to the block size), so not a change of key
            continue
        changed_keys += 1
        assert not _accepts(v, req, secret_key=sk)
    assert changed_keys > 40


@pytest.mark.parametrize("v", [v for v in VECTORS if not v["body"]], ids=lambda v: v["url"])
def test_extra_body_byte_on_empty_hash_is_unsigned_payload(v: dict[str, Any]) -> None:
    # An empty-body vector signs the empty hash; one added body byte turns it into an unsigned payload,
    # which the spec accepts unless signed payloads are required.
    req = {**_request(v), "body": b"x"}
    assert _accepts(v, req)
    assert not _accepts(v, req, require_signed=True)
