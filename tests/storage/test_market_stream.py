"""A signed model archive far larger than the memory the API may use streams through ``arkserve api`` (its
own process, RSS sampled meanwhile): the signature's headers are checked first, the body's SHA-256 as it
streams; a body that is not the one signed publishes nothing."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.auth import signing
from arkserve.bootstrap import prepare
from tests.live import free_port, gateway_port_base

MIB = 1 << 20
BODY = 192 * MIB  # the archive
ALLOWED = 48 * MIB  # what the upload may add to the API's memory


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Peak(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, _rss(self.pid))


def _archive(path: Path) -> str:
    """A tar with one ``BODY``-sized weights file; returns its base64 SHA-256 (the value to sign)."""
    weights = path.parent / "weights.bin"
    block = os.urandom(MIB)
    with weights.open("wb") as f:
        for i in range(BODY // MIB):
            f.write(block[i % 97:] + block[:i % 97])
    with tarfile.open(path, "w") as tar:
        tar.add(weights, arcname="weights.bin")
    weights.unlink()
    h = hashlib.sha256()
    with path.open("rb") as f:
        while data := f.read(MIB):
            h.update(data)
    return base64.b64encode(h.digest()).decode()


def _file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while data := f.read(256 * 1024):
            yield data


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, str, str, int]]:
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    port = free_port()
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "api.port": port,
                           "gateway.port_base": gateway_port_base()}, env=env)
    boot = prepare(s, env=env)
    boot.store.dispose()
    proc = subprocess.Popen([sys.executable, "-m", "arkserve", "api", "--data-dir", str(tmp_path / "data"),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, "the API did not start"
        time.sleep(0.1)
    yield url, boot.access_key, boot.secret_key, proc.pid
    proc.terminate()
    proc.wait(15)


def _put(url: str, ak: str, sk: str, name: str, body_hash: str, archive: Path) -> httpx.Response:
    path = f"/api/v1/models/{name}/versions/1/archive"
    host = url.removeprefix("http://")
    date = signing.format_date(time.time())
    sig = signing.signature(signing.decode_secret(sk), signing.string_to_sign("PUT", path, date, host, body_hash))
    headers = {"date": date, "x-ark-content-sha256": body_hash, "authorization": signing.authorization_header(ak, sig),
               "content-type": "application/x-tar", "content-length": str(archive.stat().st_size)}
    return httpx.put(url + path, content=_file(archive), headers=headers, timeout=300)


def test_a_signed_archive_larger_than_the_memory_allowed_streams(api: tuple[str, str, str, int],
                                                                tmp_path: Path) -> None:
    url, ak, sk, pid = api
    archive = tmp_path / "model.tar"
    body_hash = _archive(archive)
    idle = _rss(pid)
    peak = Peak(pid)
    peak.start()
    r = _put(url, ak, sk, "big", body_hash, archive)
    peak.done.set()
    peak.join()
    assert r.status_code == 201, r.text
    assert r.json()["size"] == BODY
    assert peak.peak - idle < ALLOWED, f"the API grew by {(peak.peak - idle) / MIB:.0f} MiB for a signed upload"

    # the same archive signed with another body's hash: refused after streaming, nothing published
    forged = base64.b64encode(hashlib.sha256(b"another body").digest()).decode()
    r = _put(url, ak, sk, "forged", forged, archive)
    assert r.status_code == 401 and r.json()["code"] == "ContentHashMismatch", r.text
    with httpx.Client() as http:
        from arkserve.sdk.auth import ArkAuth

        listed = http.get(f"{url}/api/v1/models", auth=ArkAuth(ak, sk)).json()
    assert [m["name"] for m in listed] == ["big"]
