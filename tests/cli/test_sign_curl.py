"""docs/signing.md's curl recipe runs as written: its ``sh`` block, pointed at a loopback server that checks the
signature with the platform's own verifier (``arkserve.auth.signing``), sends a signed payload that passes,
through the real ``arkserve sign`` command, curl and bash. A URL with a query (``?``, ``&``) works as well."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from arkserve.auth import signing
from arkserve.auth.signature_errors import SignatureError

DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"
AK, SK = "AKID0001", "uFDCEZCbi5bya6DinCwW2GxEfzkxTnlbzN0mGlxSCg4="
DOC_URL = "http://flowers.infer.example.com/flowers"


class _Checker(BaseHTTPRequestHandler):
    seen: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            signing.verify(method="POST", url=self.path, headers=headers,
                           lookup=lambda ak: signing.decode_secret(SK) if ak == AK else None, now=time.time())
            signed = signing.check_payload(headers["x-ark-content-sha256"], signing.content_hash(body), len(body),
                                           require_signed=True)
            answer, status = (b"signed\n" if signed else b"unsigned\n"), 200
        except SignatureError as exc:
            answer, status = f"{type(exc).__name__}: {exc}\n".encode(), 401
        self.seen.append((self.path, body))
        self.send_response(status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def checker() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Checker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Checker.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _curl_block() -> str:
    section = DOC.read_text(encoding="utf-8").split("## curl", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "no sh block under '## curl'"
    return match.group(1)


@pytest.mark.parametrize("tail", ["/flowers", "/flowers?top=3&lang=en"])
def test_the_documented_curl_recipe_sends_a_signed_request(checker: str, tmp_path: Path, tail: str) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    script = _curl_block()
    assert DOC_URL in script and "arkserve sign" in script
    body = b"\x89PNG\r\n" + hashlib.sha256(b"x").digest() + b"\nline two\n"  # newlines curl's -d would strip
    (tmp_path / "flower.jpg").write_bytes(body)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "ARKSERVE_ACCESS_KEY": AK,
           "ARKSERVE_SECRET_KEY": SK, "ARKSERVE_CLI_CONFIG": "/nonexistent/profiles.yaml"}
    r = subprocess.run(["bash", "-ec", script.replace(DOC_URL, checker + tail)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "signed\n", r.stdout + r.stderr
    assert _Checker.seen == [(tail, body)]
