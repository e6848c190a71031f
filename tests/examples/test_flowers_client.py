"""examples/flowers/client.py against a local stdlib HTTP(S) server that verifies every ark signature.

Runs anywhere with the venv: no torch, no platform. The server checks the signature with
``arkserve.auth.signing.verify`` and the body with ``check_payload`` and parses the multipart upload.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from arkserve.auth import signing
from arkserve.sdk.profiles import Profile, save
from arkserve.tls import ensure_local_ca, server_context
from tests.examples.flowers_support import FLOWERS

AK = "AKFLOWERSTEST"
SECRET = bytes(range(32))
SK = base64.b64encode(SECRET).decode()


@dataclass
class Seen:
    uploads: list[tuple[str, str, bytes, bool]] = field(default_factory=list)  # (field, filename, bytes, signed)
    rejected: list[str] = field(default_factory=list)


def make_handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-ID", f"req-{len(seen.uploads) + len(seen.rejected)}")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                v = signing.verify(method=self.command, url=self.path, headers=headers,
                                   lookup=lambda ak: SECRET if ak == AK else None, now=time.time())
                signed = signing.check_payload(v.content_hash, signing.content_hash(body), len(body))
            except signing.SignatureError as exc:
                seen.rejected.append(str(exc))
                self.reply(401, {"code": "unauthorized", "message": str(exc)})
                return
            msg = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                seen.uploads.append((name, part.get_filename(), part.get_payload(decode=True), signed))
            assert self.path == "/flowers"
            self.reply(200, {"class": "roses", "prob": 0.9, "replica": f"r{len(seen.uploads) % 2}"})

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(seen))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    for name in ("b.jpg", "a.jpg", "c.png"):
        (d / name).write_bytes(f"fake image {name}".encode() + bytes(range(256)))
    (d / "notes.txt").write_text("not an image; skipped")
    return d


def run_client(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARKSERVE_") and k != "REQUESTS_CA_BUNDLE"}
    base["ARKSERVE_CLI_CONFIG"] = str(tmp_path / "no-profiles.yaml")
    return subprocess.run([sys.executable, str(FLOWERS / "client.py"), *args], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_signs_each_image_with_env_keys(server: tuple[str, Seen], images: Path, tmp_path: Path) -> None:
    url, seen = server
    done = run_client(url, str(images), tmp_path=tmp_path, ARKSERVE_ACCESS_KEY=AK, ARKSERVE_SECRET_KEY=SK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["a.jpg roses", "b.jpg roses", "c.png roses"]
    assert seen.rejected == []
    assert [(f, n, signed) for f, n, _, signed in seen.uploads] == [
        ("content", "a.jpg", True), ("content", "b.jpg", True), ("content", "c.png", True)]
    assert seen.uploads[0][2] == (images / "a.jpg").read_bytes()


def test_profile_keys_and_count_cycles(server: tuple[str, Seen], images: Path, tmp_path: Path) -> None:
    url, seen = server
    config = tmp_path / "profiles.yaml"
    save(config, "lab", Profile("http://127.0.0.1:1", AK, SK))
    ids = tmp_path / "ids.txt"
    done = run_client(url, str(images), "--profile", "lab", "--count", "7", "--request-ids", str(ids),
                      tmp_path=tmp_path, ARKSERVE_CLI_CONFIG=str(config))
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["a.jpg", "b.jpg", "c.png"] * 2 + ["a.jpg"]
    assert len(seen.uploads) == 7 and all(signed for *_, signed in seen.uploads)
    assert len(ids.read_text().split()) == 7


def test_flags_beat_env_and_a_wrong_key_fails(server: tuple[str, Seen], images: Path, tmp_path: Path) -> None:
    url, seen = server
    wrong = base64.b64encode(b"x" * 32).decode()
    done = run_client(url, str(images), "--secret-key", wrong, tmp_path=tmp_path,
                      ARKSERVE_ACCESS_KEY=AK, ARKSERVE_SECRET_KEY=SK)
    assert done.returncode == 1
    assert "ERROR 401" in done.stderr
    assert len(seen.rejected) == 3 and seen.uploads == []


def test_no_keys_is_a_clear_error(images: Path, tmp_path: Path) -> None:
    done = run_client("http://127.0.0.1:9", str(images), tmp_path=tmp_path)
    assert done.returncode != 0
    assert "ARKSERVE_ACCESS_KEY" in done.stderr


@pytest.mark.parametrize("trust", ["flag", "env", "profile", "profile+env"])
def test_https_trusts_the_given_ca(trust: str, images: Path, tmp_path: Path) -> None:
    tls = ensure_local_ca(tmp_path / "data", "localhost")
    seen = Seen()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(seen))
    ctx: ssl.SSLContext = server_context(tls.cert, tls.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}"
        config = tmp_path / "profiles.yaml"
        save(config, "default", Profile(url, AK, SK, str(tls.ca_cert) if trust.startswith("profile") else ""))
        args, env = [url, str(images)], {"ARKSERVE_CLI_CONFIG": str(config)}
        if trust == "flag":
            args += ["--ca", str(tls.ca_cert)]
        elif trust == "env":
            env["REQUESTS_CA_BUNDLE"] = str(tls.ca_cert)
        elif trust == "profile+env":  # a system-wide bundle in the environment must not hide the profile's CA
            env["REQUESTS_CA_BUNDLE"] = requests.certs.where()
        done = run_client(*args, tmp_path=tmp_path, **env)
        assert done.returncode == 0, done.stderr
        assert len(seen.uploads) == 3
        untrusted = run_client(url, str(images), "--count", "1", tmp_path=tmp_path, ARKSERVE_CLI_CONFIG=str(config),
                               REQUESTS_CA_BUNDLE="") if trust == "env" else None
        if untrusted is not None:
            assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
