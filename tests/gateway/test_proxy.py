"""Integration: signed requests through the gateway to real replicas on loopback."""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import os
import socket
import ssl
import stat
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from arkserve.auth.signing import sign_headers
from arkserve.sdk.auth import ArkAuth
from tests.gateway.harness import SK, SK2, route, snapshot
from tests.live import free_port


def url(port: int, path: str = "/") -> str:
    return f"http://127.0.0.1:{port}{path}"


def test_signed_get_and_post_reach_replica_unchanged(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [r1.upstream()], port)))
    with httpx.Client(auth=ArkAuth("AKOWNER", SK)) as c:
        resp = c.get(url(port, "/v1/a%20b/?q=1&z=%2F&a=2"), headers={"X-Request-ID": "my-id.1"})
        assert resp.status_code == 200, resp.text
        info = resp.json()
        assert info["path"] == "/v1/a%20b/?q=1&z=%2F&a=2"  # raw path and query, unchanged
        assert resp.headers["x-request-id"] == "my-id.1" == info["headers"]["x-request-id"]
        assert info["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert info["headers"]["x-forwarded-proto"] == "http"
        assert info["headers"]["x-ark-access-key"] == "AKOWNER"
        assert "authorization" not in info["headers"]  # the signature never reaches the replica
        body = json.dumps({"inputs": list(range(1000))}).encode()
        resp = c.post(url(port, "/predict"), content=body)
        assert resp.status_code == 200
        assert resp.json()["sha256"] == hashlib.sha256(body).hexdigest()
        resp = c.get(url(port, "/"), headers={"X-Request-ID": "bad id!"})
        assert resp.headers["x-request-id"] != "bad id!" and resp.json()["headers"]["x-request-id"] == \
            resp.headers["x-request-id"]
    recs = g.sink.records
    assert [r.status for r in recs] == [200, 200, 200]
    assert recs[0].replica == "r1" and recs[0].access_key == "AKOWNER" and recs[0].request_id == "my-id.1"
    assert recs[1].bytes_in == len(body) and recs[1].method == "POST" and recs[1].bytes_out > 0
    assert recs[0].path == "/v1/a%20b/?q=1&z=%2F&a=2" and recs[0].client == "127.0.0.1"


def test_auth_failures(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    gateway(snapshot(1, route("svc", [r1.upstream()], port)))
    with httpx.Client() as c:
        resp = c.get(url(port, "/x"), auth=ArkAuth("AKOWNER", SK2))  # wrong SK
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == "HMAC-SHA256" and "date" in resp.headers
        err = resp.json()
        assert err["code"] == "SignatureMismatch" and err["request_id"] == resp.headers["x-request-id"]
        resp = c.get(url(port, "/x"), auth=ArkAuth("AKOTHER", SK2))  # valid, foreign key
        assert resp.status_code == 403 and resp.json()["code"] == "AccessDenied"
        resp = c.get(url(port, "/x"))
        assert resp.status_code == 401 and resp.json()["code"] == "MissingAuthorization"
        resp = c.get(url(port, "/x"), auth=ArkAuth("AKNOBODY", SK))
        assert resp.status_code == 401 and resp.json()["code"] == "InvalidCredential"
        h = sign_headers(method="POST", url="/x", host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                         body=b"one body", now=time.time())
        resp = c.post(url(port, "/x"), headers=h, content=b"another body")
        assert resp.status_code == 401 and resp.json()["code"] == "ContentHashMismatch"
        h = sign_headers(method="GET", url="/x", host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                         body=b"", now=time.time() - 3600)
        resp = c.get(url(port, "/x"), headers=h)
        assert resp.status_code == 401 and resp.json()["code"] == "RequestExpired"
        assert c.get(url(port, "/x"), auth=ArkAuth("AKOWNER", SK)).status_code == 200  # connection still fine
    assert r1.hits == ["/x"]


def test_auth_off_needs_no_signature_and_passes_authorization_only_when_asked(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port, asks = free_port(), free_port()
    gateway(snapshot(1, route("open", [r1.upstream()], port, auth=False),
                     route("tokens", [r1.upstream()], asks, auth=False, pass_authorization=True)))
    resp = httpx.get(url(port, "/free"), headers={"Authorization": "Bearer app-token"})
    assert resp.status_code == 200 and "authorization" not in resp.json()["headers"]  # a client's credentials
    resp = httpx.get(url(asks, "/free"), headers={"Authorization": "Bearer app-token"})
    assert resp.status_code == 200 and resp.json()["headers"]["authorization"] == "Bearer app-token"


def test_a_request_signed_for_another_port_is_refused(replicas: Any, gateway: Any) -> None:
    r1, r2 = replicas("r1"), replicas("r2")
    mine, other = free_port(), free_port()
    gateway(snapshot(1, route("mine", [r1.upstream()], mine), route("other", [r2.upstream()], other)))
    for host in (f"127.0.0.1:{other}", "127.0.0.1"):
        h = sign_headers(method="GET", url="/x", host=host, access_key="AKOWNER", secret_key=SK, body=b"",
                         now=time.time())
        resp = httpx.get(url(mine, "/x"), headers={**h, "Host": host})
        assert resp.status_code == 401 and resp.json()["code"] == "HostMismatch", resp.text
        assert "arrived on port" in resp.json()["message"]
    resp = httpx.get(url(mine, "/x"), auth=ArkAuth("AKOWNER", SK))  # signed for the port it is sent to
    assert resp.status_code == 200
    assert r1.hits == ["/x"] and r2.hits == []


def test_require_signed_payload_rejects_unsigned(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    gateway(snapshot(1, route("svc", [r1.upstream()], port, require_signed_payload=True)))
    h = sign_headers(method="POST", url="/u", host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                     body=None, now=time.time())
    resp = httpx.post(url(port, "/u"), headers=h, content=b"data")
    assert resp.status_code == 401 and resp.json()["code"] == "ContentHashMismatch"
    assert r1.hits == []


def test_load_spreads_over_replicas(replicas: Any, gateway: Any) -> None:
    reps = [replicas(f"r{i}") for i in range(3)]
    port = free_port()
    g = gateway(snapshot(1, route("svc", [r.upstream() for r in reps], port)))
    with httpx.Client(auth=ArkAuth("AKOWNER", SK)) as c:
        served = Counter(c.get(url(port, "/")).json()["replica"] for _ in range(30))
    assert set(served) == {"r0", "r1", "r2"} and min(served.values()) >= 5
    assert Counter(r.replica for r in g.sink.records) == served


def _tls(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, cert_path


def test_multipart_unsigned_payload_over_https(replicas: Any, gateway: Any, tmp_path: Path) -> None:
    """Reference-client style: requests + multipart file, the empty hash signed, Host with the port."""
    r1 = replicas("r1")
    port = free_port()
    ctx, cert = _tls(tmp_path)
    gateway(snapshot(1, route("flowers", [r1.upstream()], port)), ssl_context=ctx)
    image = bytes(range(256)) * 4000
    h = sign_headers(method="POST", url="/flowers", host=f"127.0.0.1:{port}", access_key="AKOWNER",
                     secret_key=SK, body=None, now=time.time())
    resp = requests.post(f"https://127.0.0.1:{port}/flowers", headers=h, files={"file": ("rose.jpg", image)},
                         verify=str(cert), timeout=10)
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["headers"]["x-forwarded-proto"] == "https"
    assert info["length"] > len(image) and info["headers"]["content-type"].startswith("multipart/form-data")
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert)), auth=ArkAuth("AKOWNER", SK)) as c:
        assert c.post(f"https://127.0.0.1:{port}/p", content=b"x" * 5000).json()["length"] == 5000


def _open_temp_files() -> dict[int, int]:
    """The unlinked regular files this process (the gateway runs on a thread of it) holds open: {fd: size}."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        path = f"/proc/self/fd/{name}"
        try:
            if os.readlink(path).endswith(" (deleted)") and stat.S_ISREG((st := os.stat(path)).st_mode):
                found[int(name)] = st.st_size
        except OSError:  # closed meanwhile
            continue
    return found


def _wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_signed_body_over_spool_memory_goes_through_a_temp_file(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [r1.upstream()], port)), spool_memory_bytes=64 * 1024)
    body = bytes(range(256)) * 12000  # ~3 MB, hashed before it may reach the replica
    h = sign_headers(method="POST", url="/big", host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                     body=body, now=time.time())
    head = "".join(f"{k}: {v}\r\n" for k, v in {**h, "Host": f"127.0.0.1:{port}", "Content-Length": len(body)}.items())
    before = set(_open_temp_files())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # all but the last byte: the gateway holds them (it cannot check the hash yet), past its memory bound
        sock.sendall(f"POST /big HTTP/1.1\r\n{head}\r\n".encode() + body[:-1])
        def spooled() -> list[int]:
            return [n for fd, n in _open_temp_files().items() if fd not in before]

        _wait_for("the body in a temp file", lambda: len(body) - 1 in spooled())
        assert spooled() == [len(body) - 1] and r1.hits == []  # one file; nothing reached the replica yet
        sock.sendall(body[-1:])
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        assert resp.status == 200
        info = json.loads(resp.read())
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["headers"]["content-length"] == str(len(body))
    _wait_for("the temp file closed", lambda: not set(_open_temp_files()) - before)
    bad = httpx.post(url(port, "/big"), headers=h, content=body[:-1] + b"!", timeout=30)  # one byte changed
    assert bad.status_code == 401 and bad.json()["code"] == "ContentHashMismatch"
    assert r1.hits == ["/big"]  # the tampered body never reached the replica
    metrics = httpx.get(f"http://127.0.0.1:{g.gw.admin_port}/metrics").text
    assert 'arkserve_gateway_auth_failures_total{code="ContentHashMismatch"} 1' in metrics
    assert 'arkserve_gateway_requests_total{service="svc",replica="r1",status="2xx"} 1' in metrics
