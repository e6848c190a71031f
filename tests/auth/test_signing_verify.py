"""Verifier behaviour: each tampered input maps to its spec error code; malformed input only ever raises
SignatureError; round trips over arbitrary requests; the date format; the HMAC fast path."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import urllib.parse
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arkserve.auth import signing as s

AK = "AKIDTEST0000000000AB"
SK = base64.b64encode(bytes(range(32))).decode()
KEY = s.decode_secret(SK)
NOW = 1_795_500_000.0  # Tue, 24 Nov 2026 06:00:00 GMT, the date of vector 1
HOST = "svc.example.com:8443"
URL = "/v1/predict?verbose=1&top_k=3"
BODY = b'{"inputs": [1, 2, 3]}'
KEYS = {AK: KEY}


def signed(
    *,
    method: str = "POST",
    url: str = URL,
    host: str = HOST,
    body: bytes | None = BODY,
    now: float = NOW,
    access_key: str = AK,
    secret_key: str = SK,
) -> dict[str, str]:
    headers = s.sign_headers(
        method=method, url=url, host=host, access_key=access_key, secret_key=secret_key, body=body, now=now
    )
    out = {name.lower(): value for name, value in headers.items()}
    out["host"] = host
    return out


def check(
    *,
    method: str = "POST",
    url: str = URL,
    headers: Mapping[str, str],
    body: bytes = BODY,
    now: float = NOW,
    require_signed: bool = False,
    keys: Mapping[str, bytes] = KEYS,
) -> bool:
    verified = s.verify(method=method, url=url, headers=headers, lookup=keys.get, now=now)
    return s.check_payload(verified.content_hash, s.content_hash(body), len(body), require_signed=require_signed)


def code_of(**kwargs: object) -> str:
    with pytest.raises(s.SignatureError) as info:
        check(**kwargs)  # type: ignore[arg-type]
    err = info.value
    assert err.message and str(err) == err.message
    assert err.status == (403 if err.code == "AccessDenied" else 401)
    assert type(err).code == err.code and type(err).__name__ == err.code
    return err.code


# ------------------------------------------------------------------------------------ constants, api


def test_constants() -> None:
    assert s.EMPTY_CONTENT_HASH == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert s.content_hash(b"") == s.EMPTY_CONTENT_HASH
    assert s.SCHEME == "HMAC-SHA256"
    assert s.DEFAULT_SKEW_S == 900


def test_error_classes() -> None:
    codes = {cls.__name__: (cls.code, cls.status) for cls in s.SignatureError.__subclasses__()}
    assert codes == {
        "MissingAuthorization": ("MissingAuthorization", 401),
        "MalformedAuthorization": ("MalformedAuthorization", 401),
        "InvalidDate": ("InvalidDate", 401),
        "RequestExpired": ("RequestExpired", 401),
        "MissingSignedHeader": ("MissingSignedHeader", 401),
        "InvalidCredential": ("InvalidCredential", 401),
        "SignatureMismatch": ("SignatureMismatch", 401),
        "ContentHashMismatch": ("ContentHashMismatch", 401),
        "AccessDenied": ("AccessDenied", 403),
    }
    err = s.AccessDenied("this key may not call service flowers")
    assert (err.code, err.status, err.message) == (
        "AccessDenied",
        403,
        "this key may not call service flowers",
    )


def test_happy_path_signed_and_unsigned() -> None:
    assert check(headers=signed()) is True
    assert check(headers=signed(body=None)) is False  # empty hash + non-empty body: unsigned payload
    assert check(headers=signed(body=b""), body=b"") is True
    assert check(headers=signed(body=None), body=b"") is True  # empty hash of an empty body is signed
    assert s.verify(method="POST", url=URL, headers=signed(), lookup=KEYS.get, now=NOW) == s.Verified(
        AK, s.content_hash(BODY)
    )


# ------------------------------------------------------------------------------------------ tampering


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"method": "PUT"}, "SignatureMismatch"),
        ({"method": "post"}, "SignatureMismatch"),  # methods are case-sensitive on the wire
        ({"url": "/v1/predicT?verbose=1&top_k=3"}, "SignatureMismatch"),
        ({"url": "/v1/predict?verbose=1&top_k=4"}, "SignatureMismatch"),
        ({"url": "/v1/predict?top_k=3&verbose=1"}, "SignatureMismatch"),  # never re-ordered
        ({"url": "/v1/predict"}, "SignatureMismatch"),
        ({"url": "/v1/%70redict?verbose=1&top_k=3"}, "SignatureMismatch"),  # never decoded
        ({"body": BODY + b" "}, "ContentHashMismatch"),
        ({"body": b""}, "ContentHashMismatch"),
        ({"keys": {}}, "InvalidCredential"),
        ({"keys": {AK: b"k" * 32}}, "SignatureMismatch"),
        ({"keys": {AK.lower(): KEY}}, "InvalidCredential"),
    ],
    ids=repr,
)
def test_tampered_request(change: dict[str, object], expected: str) -> None:
    assert code_of(headers=signed(), **change) == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("host", "svc.example.com", "SignatureMismatch"),
        ("host", "svc.example.com:8444", "SignatureMismatch"),
        ("host", "SVC.example.com:8443", "SignatureMismatch"),
        ("date", s.format_date(NOW + 1), "SignatureMismatch"),
        ("date", s.format_date(NOW).replace("GMT", "UTC"), "InvalidDate"),
        ("date", "", "InvalidDate"),
        ("x-ark-content-sha256", s.EMPTY_CONTENT_HASH, "SignatureMismatch"),
        ("x-ark-content-sha256", s.content_hash(b"other"), "SignatureMismatch"),
    ],
)
def test_tampered_header(name: str, value: str, expected: str) -> None:
    headers = {**signed(), name: value}
    assert code_of(headers=headers) == expected


def _with_auth(**parts: str) -> dict[str, str]:
    headers = signed()
    p = s.parse_authorization(headers["authorization"])
    fields = {
        "ak": p.access_key,
        "names": ";".join(p.signed_headers),
        "sig": base64.b64encode(p.signature).decode(),
    }
    fields.update(parts)
    headers["authorization"] = (
        f"HMAC-SHA256 Credential={fields['ak']}&SignedHeaders={fields['names']}&Signature={fields['sig']}"
    )
    return headers


def test_tampered_access_key_and_signature() -> None:
    assert code_of(headers=_with_auth(ak="AKIDOTHER")) == "InvalidCredential"
    other_key_sig = s.signature(b"x" * 32, "anything")
    assert code_of(headers=_with_auth(sig=other_key_sig)) == "SignatureMismatch"
    # a valid signature by the same key over another request
    sig = s.signature(KEY, s.string_to_sign("POST", "/other", signed()["date"], HOST, s.content_hash(BODY)))
    assert code_of(headers=_with_auth(sig=sig)) == "SignatureMismatch"


def test_invalid_credential_message_is_the_same_for_any_unknown_key() -> None:
    messages = set()
    for keys, ak in [({}, AK), ({"AKIDOTHER": KEY}, AK), ({AK: KEY}, "AKIDUNKNOWN")]:
        with pytest.raises(s.InvalidCredential) as info:
            check(headers=_with_auth(ak=ak), keys=keys)
        messages.add(info.value.message)
    assert len(messages) == 1
    assert AK not in next(iter(messages))


def test_mismatch_message_never_reveals_the_expected_signature() -> None:
    headers = _with_auth(sig=s.signature(b"x" * 32, "anything"))
    expected = s.signature(KEY, s.string_to_sign("POST", URL, headers["date"], HOST, headers["x-ark-content-sha256"]))
    with pytest.raises(s.SignatureMismatch) as info:
        check(headers=headers)
    assert expected not in info.value.message
    assert expected[:12] not in repr(info.value)


# ----------------------------------------------------------------------------------------------- skew


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (0, True),
        (899, True),
        (900, True),
        (-900, True),
        (901, False),
        (-901, False),
        (3600, False),
        (-86400 * 365, False),
    ],
)
def test_skew_window(offset: int, ok: bool) -> None:
    headers = signed(now=NOW + offset)  # client clock off by `offset`
    if ok:
        assert check(headers=headers) is True
    else:
        assert code_of(headers=headers) == "RequestExpired"


def test_skew_window_is_configurable_and_message_states_both_times() -> None:
    headers = signed(now=NOW - 61)
    assert s.verify(method="POST", url=URL, headers=headers, lookup=KEYS.get, now=NOW, skew_s=61)
    with pytest.raises(s.RequestExpired) as info:
        s.verify(method="POST", url=URL, headers=headers, lookup=KEYS.get, now=NOW, skew_s=60)
    msg = info.value.message
    assert headers["date"] in msg and s.format_date(NOW) in msg and "60 s" in msg


# ------------------------------------------------------------------------------------ malformed shapes

GOOD = signed()["authorization"]
SIG = GOOD.rsplit("Signature=", 1)[1]
NAMES = "date;host;x-ark-content-sha256"
SIG_33 = base64.b64encode(b"\x01" * 33).decode()
SIG_31 = base64.b64encode(b"\x01" * 31).decode()
NON_CANONICAL = SIG[:42] + chr(ord(SIG[42]) + 1) + "="  # decodes to the same 32 bytes, different text

MALFORMED: list[tuple[str | None, str]] = [
    (None, "MissingAuthorization"),
    ("", "MissingAuthorization"),
    ("   ", "MissingAuthorization"),
    ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "MissingAuthorization"),
    ("Bearer abc", "MissingAuthorization"),
    ("hmac-sha256 " + GOOD.split(" ", 1)[1], "MissingAuthorization"),
    ("HMAC-SHA1 " + GOOD.split(" ", 1)[1], "MissingAuthorization"),
    ("HMAC-SHA256", "MalformedAuthorization"),
    ("HMAC-SHA256 ", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG}&", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&&SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 &Credential={AK}&SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential=&SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders=&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature=", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Credential={AK}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Sig={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential {AK}&SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential=A K&SignedHeaders={NAMES}&Signature={SIG}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature=not base64!", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG[:-1]}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG}=", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG_31}", "MalformedAuthorization"),
    (f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG_33}", "MalformedAuthorization"),
    (
        f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={NON_CANONICAL}",
        "MalformedAuthorization",
    ),
    (
        f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG[:20]}é{SIG[21:]}",
        "MalformedAuthorization",
    ),
    (
        f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={SIG.replace('=', '.')}",
        "MalformedAuthorization",
    ),
    (
        f"HMAC-SHA256 Credential={AK}&SignedHeaders=date;;host;x-ark-content-sha256&Signature={SIG}",
        "MalformedAuthorization",
    ),
    (
        f"HMAC-SHA256 Credential={AK}&SignedHeaders=date;date;host;x-ark-content-sha256&Signature={SIG}",
        "MalformedAuthorization",
    ),
]


@pytest.mark.parametrize(("value", "expected"), MALFORMED, ids=repr)
def test_malformed_authorization(value: str | None, expected: str) -> None:
    with pytest.raises(s.SignatureError) as info:
        s.parse_authorization(value)
    assert info.value.code == expected
    headers = {k: v for k, v in signed().items() if k != "authorization"}
    if value is not None:
        headers["authorization"] = value
    assert code_of(headers=headers) == expected


def test_parse_authorization_good() -> None:
    p = s.parse_authorization(GOOD)
    assert p == s.ParsedAuthorization(AK, ("date", "host", "x-ark-content-sha256"), base64.b64decode(SIG))
    assert len(p.signature) == 32
    # parameters in another order, or an access key with punctuation, take the general path
    reordered = f"HMAC-SHA256 Signature={SIG}&SignedHeaders={NAMES}&Credential={AK}"
    assert s.parse_authorization(reordered) == p
    assert check(headers={**signed(), "authorization": reordered}) is True
    odd = s.parse_authorization(f"HMAC-SHA256 Credential=ak-1.x_2&SignedHeaders={NAMES}&Signature={SIG}")
    assert odd.access_key == "ak-1.x_2"


@pytest.mark.parametrize(
    ("names", "drop", "expected"),
    [
        ("date;host", None, "MissingSignedHeader"),
        ("host;x-ark-content-sha256", None, "MissingSignedHeader"),
        ("date;x-ark-content-sha256", None, "MissingSignedHeader"),
        ("Date;host;x-ark-content-sha256", None, "MissingSignedHeader"),
        ("host;date;x-ark-content-sha256", None, "SignatureMismatch"),  # any order is fine; sig still checked
        ("date;host;x-ark-content-sha256;content-type", None, "MalformedAuthorization"),
        (NAMES, "date", "MissingSignedHeader"),
        (NAMES, "host", "MissingSignedHeader"),
        (NAMES, "x-ark-content-sha256", "MissingSignedHeader"),
    ],
)
def test_signed_headers(names: str, drop: str | None, expected: str) -> None:
    headers = _with_auth(names=names, sig=s.signature(b"x" * 32, "x"))
    if drop:
        del headers[drop]
    assert code_of(headers=headers) == expected


def test_secret_key_must_be_valid_base64() -> None:
    for bad in ["not base64!", "abc", "YWJj\n", " YWJjZA==", "YWJjZA", "", "YWJjZA==="]:
        with pytest.raises(ValueError, match="base64"):
            s.decode_secret(bad)
        with pytest.raises(ValueError):
            s.sign_headers(method="GET", url="/", host="h", access_key=AK, secret_key=bad, body=None, now=NOW)
    assert s.decode_secret("YWJjZA==") == b"abcd"


# -------------------------------------------------------------------------- fuzz: only SignatureError

_PIECES = st.sampled_from(
    [
        "HMAC-SHA256",
        " ",
        "Credential",
        "SignedHeaders",
        "Signature",
        "=",
        "&",
        ";",
        "date",
        "host",
        "x-ark-content-sha256",
        AK,
        SIG,
        SIG_33,
        "==",
        "\t",
        "é",
        "\x00",
    ]
)
AUTH_TEXT = st.one_of(
    st.text(),
    st.lists(_PIECES, max_size=16).map("".join),
    st.text().map(lambda t: "HMAC-SHA256 " + t),
    st.text(alphabet=st.characters(), max_size=44).map(
        lambda t: f"HMAC-SHA256 Credential={AK}&SignedHeaders={NAMES}&Signature={t}"
    ),
)


@given(AUTH_TEXT)
@settings(max_examples=400)
def test_parse_authorization_only_raises_signature_error(value: str) -> None:
    try:
        p = s.parse_authorization(value)
    except s.SignatureError:
        return
    assert len(p.signature) == 32 and p.access_key


@given(
    method=st.text(max_size=8),
    url=st.text(max_size=40),
    auth=st.one_of(st.none(), AUTH_TEXT),
    date=st.one_of(
        st.none(),
        st.text(max_size=40),
        st.just(s.format_date(NOW)),
        st.floats(-1e12, 1e12).map(s.format_date),
    ),
    host=st.one_of(st.none(), st.text(max_size=20)),
    claimed=st.one_of(st.none(), st.text(max_size=50)),
    skew=st.integers(0, 10**6),
)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_verify_only_raises_signature_error(
    method: str,
    url: str,
    auth: str | None,
    date: str | None,
    host: str | None,
    claimed: str | None,
    skew: int,
) -> None:
    headers = {
        k: v
        for k, v in {
            "authorization": auth,
            "date": date,
            "host": host,
            "x-ark-content-sha256": claimed,
        }.items()
        if v is not None
    }
    try:
        verified = s.verify(method=method, url=url, headers=headers, lookup=lambda ak: KEY, now=NOW, skew_s=skew)
    except s.SignatureError:
        return
    # only a real signature gets through; random text never does
    raise AssertionError(f"accepted random input {verified}")


@given(claimed=st.text(max_size=50), body=st.binary(max_size=64), require=st.booleans())
def test_check_payload_only_raises_content_hash_mismatch(claimed: str, body: bytes, require: bool) -> None:
    try:
        result = s.check_payload(claimed, s.content_hash(body), len(body), require_signed=require)
    except s.ContentHashMismatch:
        return
    assert (result is True and claimed == s.content_hash(body)) or (
        result is False and claimed == s.EMPTY_CONTENT_HASH and body and not require
    )


# ------------------------------------------------------------------------------------------ round trip

METHODS = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "post"])
SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


@st.composite
def raw_urls(draw: st.DrawFn) -> str:
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=4))
    path = "/" + "/".join(urllib.parse.quote(seg, safe="") for seg in segments)
    if draw(st.booleans()):  # clients differ in the case of escapes; the wire form is what counts
        path = path.lower()
    pairs = draw(st.lists(st.tuples(st.sampled_from(["a", "b", "top_k", "ü", "x y"]), SEGMENT), max_size=5))
    if pairs and draw(st.booleans()):
        pairs.append(pairs[0])  # repeated key
    query = urllib.parse.urlencode(pairs)
    return f"{path}?{query}" if query else path


HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "localhost", "svc.example.com", "[::1]"]),
    st.tuples(st.sampled_from(["127.0.0.1", "svc.example.com", "[::1]"]), st.integers(1, 65535)).map(
        lambda hp: f"{hp[0]}:{hp[1]}"
    ),
)
SECRETS = st.binary(min_size=16, max_size=96).map(lambda b: base64.b64encode(b).decode())


@given(
    method=METHODS,
    url=raw_urls(),
    host=HOSTS,
    body=st.one_of(st.none(), st.binary(max_size=4096)),
    sk=SECRETS,
    ak=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=20),
    now=st.integers(0, 4_102_444_800),
    client_skew=st.integers(-900, 900),
)
@settings(max_examples=300)
def test_round_trip(
    method: str, url: str, host: str, body: bytes | None, sk: str, ak: str, now: int, client_skew: int
) -> None:
    headers = s.sign_headers(
        method=method, url=url, host=host, access_key=ak, secret_key=sk, body=body, now=now + client_skew
    )
    wire = {k.lower(): v for k, v in headers.items()} | {"host": host}
    verified = s.verify(method=method.upper(), url=url, headers=wire, lookup={ak: s.decode_secret(sk)}.get, now=now)
    assert verified.access_key == ak
    sent = body or b""
    signed_payload = s.check_payload(verified.content_hash, s.content_hash(sent), len(sent))
    assert signed_payload is (body is not None or not sent)
    # and the same request differing in the URL by one trailing byte is refused
    with pytest.raises(s.SignatureMismatch):
        s.verify(method=method.upper(), url=url + "x", headers=wire, lookup={ak: s.decode_secret(sk)}.get, now=now)


@pytest.mark.parametrize("size", [0, 1, 1023, 64 * 1024, 1024 * 1024, 10 * 1024 * 1024])
def test_round_trip_body_sizes(size: int) -> None:
    body = os.urandom(size)
    headers = signed(body=body)
    assert check(headers=headers, body=body) is True
    if size:
        tampered = bytearray(body)
        tampered[size // 2] ^= 1
        assert code_of(headers=headers, body=bytes(tampered)) == "ContentHashMismatch"
        assert code_of(headers=headers, body=body[:-1]) == "ContentHashMismatch"


@given(key=st.binary(max_size=200), msg=st.text())
def test_hmac_fast_path_matches_stdlib(key: bytes, msg: str) -> None:
    data = msg.encode("utf-8", "surrogatepass")
    expected = base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()
    assert s.signature(key, msg) == expected
    assert s.signature(key, msg) == expected  # cached pads give the same answer the second time


# ------------------------------------------------------------------------------------------------ date


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (1_795_500_000.9, "Tue, 24 Nov 2026 06:00:00 GMT"),
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
    ],
)
def test_format_and_parse_date(ts: float, text: str) -> None:
    assert s.format_date(ts) == text
    assert s.parse_date(text) == int(ts)


@given(st.integers(-62_135_596_800 + 86400, 253_402_300_799))
def test_date_round_trip_matches_email_utils(ts: int) -> None:
    text = s.format_date(ts)
    assert text == email.utils.formatdate(ts, usegmt=True) or ts < 0  # stdlib pads years < 1000 differently
    assert s.parse_date(text) == ts


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Tue, 24 Nov 2026 06:00:00",
        "Tue, 24 Nov 2026 06:00:00 UTC",
        "Tue, 24 Nov 2026 06:00:00 gmt",
        "Wed, 24 Nov 2026 06:00:00 GMT",  # wrong weekday
        "tue, 24 Nov 2026 06:00:00 GMT",
        "Tue, 24 nov 2026 06:00:00 GMT",
        "Tue, 24 Nox 2026 06:00:00 GMT",
        "Tue, 4 Nov 2026 06:00:00 GMT ",
        "Tue,  4 Nov 2026 06:00:00 GMT",
        "Tue, 24 Nov 2026 6:00:00 GMT ",
        "Tue, 24 Nov 2026 24:00:00 GMT",
        "Tue, 24 Nov 2026 06:60:00 GMT",
        "Tue, 24 Nov 2026 06:00:60 GMT",
        "Sun, 29 Feb 2026 06:00:00 GMT",
        "Mon, 31 Nov 2026 06:00:00 GMT",
        "Tue, 00 Nov 2026 06:00:00 GMT",
        "Tue, 24 Nov 2026 06:00:00 GMT\n",
        "Tue, 24 Nov 2026T06:00:00 GMT",
        "2026-11-24T06:00:00Z",
        "Tue, 2٤ Nov 2026 06:00:00 GMT",
        "Tue, +4 Nov 2026 06:00:00 GMT",
        "Tue, 24 Nov 2026 06:00:0 GMT ",
        "Tuesday, 24-Nov-26 06:00:00 GMT",
        "Tue, 24 Nov 2026 06:00:00 +0000",
    ],
)
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(s.InvalidDate):
        s.parse_date(text)


def test_lookup_may_return_bytearray_or_memoryview() -> None:
    for key in (bytearray(KEY), memoryview(KEY)):
        assert check(headers=signed(), keys={AK: key}) is True  # type: ignore[dict-item]


def test_a_wrong_secret_key_is_named_as_the_likely_cause_with_the_access_key() -> None:
    wrong = base64.b64encode(b"w" * 32).decode()
    with pytest.raises(s.SignatureError) as info:
        check(headers=signed(secret_key=wrong))
    assert info.value.code == "SignatureMismatch"
    message = str(info.value)
    assert f"(access key {AK})" in message and "wrong or mistyped secret key" in message
    assert wrong not in message and SK not in message  # never a secret
