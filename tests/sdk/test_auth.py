"""The SDK auth classes against a real HTTP(S) server on 127.0.0.1 that verifies every request the way the
gateway does: from the raw request line and header values, with verify() then check_payload()."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from arkserve.auth import signing
from arkserve.sdk import ArkAuth, ArkRequestsAuth
from arkserve.sdk.requests_auth import _requests_host
from tests.spec import vectors

AK = "AKIDSDKTEST000000001"
SK = base64.b64encode(bytes(range(100, 132))).decode()
SK_48 = "BXcvjRYhF4C/DcFsfYJaiUK/0mPiJogw+avBjmnWWdt7dWDt8rBXjTZS3FR9Rx2y"  # vector 3: 48 bytes
KEYS = {AK: signing.decode_secret(SK), "AKID0003": signing.decode_secret(SK_48)}


# ---------------------------------------------------------------------------------------- the server


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    result: dict[str, Any] = field(default_factory=dict)


class VerifyingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: VerifyingServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _handle(self) -> None:
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            assert name.lower() not in headers, f"duplicate header {name}"
            headers[name.lower()] = value
        seen = Seen(self.command, self.path, headers, body)
        try:
            verified = signing.verify(
                method=self.command, url=self.path, headers=headers, lookup=KEYS.get, now=time.time()
            )
            signed = signing.check_payload(
                verified.content_hash,
                signing.content_hash(body),
                len(body),
                require_signed=self.server.require_signed,
            )
            status, payload = 200, {"ok": True, "access_key": verified.access_key, "signed": signed}
        except signing.SignatureError as err:
            status, payload = err.status, {"code": err.code, "message": err.message}
        seen.result = payload
        self.server.seen.append(seen)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", signing.SCHEME)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class VerifyingServer(ThreadingHTTPServer):
    daemon_threads = True
    require_signed = False

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), VerifyingHandler)
        self.seen: list[Seen] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.server_address[1]
        self.base = f"{self.scheme}://127.0.0.1:{self.port}"


def _make_cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "arkserve-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["http", "https"])
def server(request: pytest.FixtureRequest, cert: tuple[Path, Path]) -> Iterator[VerifyingServer]:
    tls = None
    if request.param == "https":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*map(str, cert))
    srv = VerifyingServer(tls)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def verify_arg(server: VerifyingServer, cert: tuple[Path, Path]) -> Any:
    return str(cert[0]) if server.scheme == "https" else True


def httpx_verify(server: VerifyingServer, cert: tuple[Path, Path]) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(cert[0])) if server.scheme == "https" else True


# -------------------------------------------------------------------------------------- httpx (sync)

PATH = "/v1/caf%C3%A9/ü/a%2fb"  # an escape, a non-ASCII char httpx escapes, a lower-case escape
PARAMS = [("tag", "a"), ("tag", "b"), ("q", "ü x&y"), ("top_k", "3")]


def _last(server: VerifyingServer) -> Seen:
    assert server.seen, "the server saw no request"
    return server.seen[-1]


def test_httpx_sync(server: VerifyingServer, cert: tuple[Path, Path]) -> None:
    auth = ArkAuth(AK, SK)
    with httpx.Client(base_url=server.base, auth=auth, verify=httpx_verify(server, cert)) as client:
        r = client.get(PATH, params=PARAMS)
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True, "access_key": AK, "signed": True}
        seen = _last(server)
        assert seen.target.startswith("/v1/caf%C3%A9/%C3%BC/a%2fb?tag=a&tag=b&q=")
        assert seen.headers["host"] == f"127.0.0.1:{server.port}"

        r = client.post("/v1/predict", json={"inputs": [1, 2, 3]})
        assert r.json()["signed"] is True
        assert _last(server).headers["x-ark-content-sha256"] == signing.content_hash(_last(server).body)

        r = client.put("/raw", content=b"\x00\xff" * 5000)
        assert r.json()["signed"] is True

        r = client.post("/upload", files={"file": ("weights.bin", b"\x01" * 70_000)}, data={"name": "m"})
        assert r.status_code == 200, r.text
        assert r.json()["signed"] is False  # multipart stream: unsigned payload, as the reference client
        assert _last(server).headers["x-ark-content-sha256"] == signing.EMPTY_CONTENT_HASH
        assert len(_last(server).body) > 70_000

        r = client.post("/stream", content=iter([b"chunk-1", b"chunk-2"]))
        assert r.json()["signed"] is False

        assert client.delete("/v1/items/7").json()["signed"] is True
        assert client.head("/").status_code == 200


def test_httpx_sync_localhost_name(server: VerifyingServer, cert: tuple[Path, Path]) -> None:
    base = f"{server.scheme}://localhost:{server.port}"
    with httpx.Client(base_url=base, auth=ArkAuth(AK, SK), verify=httpx_verify(server, cert)) as client:
        assert client.get("/").status_code == 200
    assert _last(server).headers["host"] == f"localhost:{server.port}"


def test_httpx_async(server: VerifyingServer, cert: tuple[Path, Path]) -> None:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.base, auth=ArkAuth("AKID0003", SK_48), verify=httpx_verify(server, cert)
        ) as client:
            return [
                await client.get(PATH, params=PARAMS),
                await client.post("/v1/predict", json={"inputs": [1, 2, 3]}),
                await client.post("/upload", files={"file": ("a.txt", b"hello")}),
            ]

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    assert [r.json()["signed"] for r in responses] == [True, True, False]


def test_httpx_wrong_key_and_clock_are_refused(server: VerifyingServer, cert: tuple[Path, Path]) -> None:
    other_sk = base64.b64encode(b"\x07" * 32).decode()
    with httpx.Client(base_url=server.base, verify=httpx_verify(server, cert)) as client:
        r = client.get("/", auth=ArkAuth(AK, other_sk))
        assert (r.status_code, r.json()["code"]) == (401, "SignatureMismatch")
        assert r.headers["WWW-Authenticate"] == "HMAC-SHA256"
        r = client.get("/", auth=ArkAuth(AK, SK, clock=lambda: time.time() - 3600))
        assert (r.status_code, r.json()["code"]) == (401, "RequestExpired")
        r = client.get("/", auth=ArkAuth("AKIDNOTKNOWN", SK))
        assert (r.status_code, r.json()["code"]) == (401, "InvalidCredential")
        r = client.get("/")
        assert (r.status_code, r.json()["code"]) == (401, "MissingAuthorization")


def test_unsigned_payload_refused_when_signed_payloads_required(
    server: VerifyingServer, cert: tuple[Path, Path]
) -> None:
    server.require_signed = True
    with httpx.Client(base_url=server.base, auth=ArkAuth(AK, SK), verify=httpx_verify(server, cert)) as client:
        r = client.post("/upload", files={"file": ("a.txt", b"hello")})
        assert (r.status_code, r.json()["code"]) == (401, "ContentHashMismatch")
        assert client.post("/v1/predict", json={}).status_code == 200


# ------------------------------------------------------------------------------------------ requests


def test_requests(server: VerifyingServer, verify_arg: Any) -> None:
    with requests.Session() as session:
        session.auth = ArkRequestsAuth(AK, SK)
        session.verify = verify_arg
        session.trust_env = False  # else REQUESTS_CA_BUNDLE in the environment overrides session.verify
        r = session.get(server.base + PATH, params=PARAMS)
        assert r.status_code == 200, r.text
        assert r.json() == {"ok": True, "access_key": AK, "signed": True}
        seen = _last(server)
        assert "/a%2Fb?" in seen.target  # urllib3 upper-cased the escape on the wire; the signature followed
        assert seen.headers["host"] == f"127.0.0.1:{server.port}"

        assert session.post(server.base + "/v1/predict", json={"inputs": [1, 2, 3]}).json()["signed"] is True
        assert session.post(server.base + "/form", data={"a": "1", "b": "ü"}).json()["signed"] is True

        r = session.post(server.base + "/upload", files={"file": ("weights.bin", b"\x02" * 70_000)}, data={"name": "m"})
        assert r.status_code == 200, r.text
        assert r.json()["signed"] is True  # requests builds multipart bytes up front, so they are signed
        assert _last(server).headers["content-type"].startswith("multipart/form-data")

        r = session.post(server.base + "/stream", data=iter([b"chunk-1", b"chunk-2"]))
        assert r.status_code == 200, r.text
        assert r.json()["signed"] is False
        assert _last(server).body == b"chunk-1chunk-2"

        assert session.delete(server.base + "/v1/items/7").json()["signed"] is True


def test_requests_file_body_and_48_byte_key(server: VerifyingServer, verify_arg: Any, tmp_path: Path) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"\x03" * 10_000)
    with path.open("rb") as fh:
        r = requests.put(
            server.base + "/file",
            data=fh,
            auth=ArkRequestsAuth("AKID0003", SK_48),
            verify=verify_arg,
            timeout=10,
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "access_key": "AKID0003", "signed": False}
    r = requests.get(
        f"{server.scheme}://localhost:{server.port}/x?y=1",
        auth=ArkRequestsAuth(AK, SK),
        verify=verify_arg,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert _last(server).headers["host"] == f"localhost:{server.port}"


def test_requests_refusals(server: VerifyingServer, verify_arg: Any) -> None:
    other = base64.b64encode(b"\x07" * 32).decode()
    r = requests.get(server.base + "/", auth=ArkRequestsAuth(AK, other), verify=verify_arg, timeout=10)
    assert (r.status_code, r.json()["code"]) == (401, "SignatureMismatch")
    stale = ArkRequestsAuth(AK, SK, clock=lambda: time.time() + 1000)
    r = requests.get(server.base + "/", auth=stale, verify=verify_arg, timeout=10)
    assert (r.status_code, r.json()["code"]) == (401, "RequestExpired")


# ------------------------------------------------------------------------------------------ units


@pytest.mark.parametrize("cls", [ArkAuth, ArkRequestsAuth])
def test_secret_key_checked_up_front(cls: Any) -> None:
    for bad in ["not base64!", "abc", "", SK[:-1], SK + "\n"]:
        with pytest.raises(ValueError, match="base64"):
            cls(AK, bad)
    for bad_ak in ["", "AK ID", "AK&x", "ÄK"]:
        with pytest.raises(ValueError, match="access_key"):
            cls(bad_ak, SK)
    assert cls("AKID0003", SK_48).access_key == "AKID0003"
    assert SK not in repr(cls(AK, SK))


def test_httpx_headers_match_the_vector() -> None:
    v = vectors()[2]
    auth = ArkAuth(v["access_key"], v["secret_key"], clock=lambda: signing.parse_date(v["date"]))
    request = httpx.Request(v["method"], f"http://{v['host']}{v['url']}", content=v["body"].encode())
    signed = next(auth.sync_auth_flow(request))
    assert {k: signed.headers[k] for k in v["headers"]} == v["headers"]
    prepared = requests.Request(v["method"], f"http://{v['host']}{v['url']}", data=v["body"].encode()).prepare()
    ArkRequestsAuth(v["access_key"], v["secret_key"], clock=lambda: signing.parse_date(v["date"]))(prepared)
    assert {k: prepared.headers[k] for k in v["headers"]} == v["headers"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://example.com/x", "example.com"),
        ("http://example.com:80/x", "example.com"),
        ("https://example.com:443/x", "example.com"),
        ("https://example.com:80/x", "example.com:80"),
        ("http://EXAMPLE.com:8080/x", "example.com:8080"),
        ("http://127.0.0.1:8443/", "127.0.0.1:8443"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("https://[::1]/", "[::1]"),
    ],
)
def test_requests_host_header(url: str, host: str) -> None:
    assert _requests_host(requests.Request("GET", url).prepare()) == host
    httpx_host = httpx.Request("GET", url).headers["Host"]
    assert httpx_host == host  # both clients agree on the Host they send


def test_requests_explicit_host_header_is_signed() -> None:
    prepared = requests.Request("GET", "http://127.0.0.1:8000/", headers={"Host": "svc.example.com"}).prepare()
    assert _requests_host(prepared) == "svc.example.com"


@pytest.mark.parametrize("uri", ["ws://127.0.0.1:20001/ws", "wss://svc.example.com/chat?x=1&y=%2F",
                                 "ws://svc.example.com:80/", "wss://[::1]:8443/a", "ws://Example.COM:8080",
                                 "wss://h.example:443/p"])
def test_websocket_headers_sign_what_the_websockets_client_sends(uri: str) -> None:
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    from arkserve.sdk.auth import websocket_headers

    sk = base64.b64encode(bytes(range(32))).decode()
    request = ClientProtocol(parse_uri(uri)).connect()  # the handshake the real client would write
    headers = {k.lower(): v for k, v in websocket_headers(uri, "AKWS", sk).items()}
    headers["host"] = request.headers["Host"]
    v = signing.verify(method="GET", url=request.path, headers=headers,
                       lookup={"AKWS": signing.decode_secret(sk)}.get, now=time.time())
    assert v.access_key == "AKWS" and v.content_hash == signing.EMPTY_CONTENT_HASH


def test_websocket_headers_refuse_other_uris() -> None:
    from arkserve.sdk.auth import websocket_headers

    sk = base64.b64encode(bytes(32)).decode()
    for bad in ("https://h/x", "ws:///nohost", "h:80/x"):
        with pytest.raises(ValueError, match="not a WebSocket URI"):
            websocket_headers(bad, "AK", sk)
