"""WebDAV at /dav/ with rclone (Debian's ``rclone``), the client people mount and sync disks with: list, put,
get, a folder synced both ways, with a password and with AK/SK, and a quota refusal that stores nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.required import unavailable
from tests.storage.conftest import DiskEnv


@pytest.fixture(autouse=True)
def _rclone() -> None:
    if shutil.which("rclone") is None:
        unavailable("ARKSERVE_REQUIRE_RCLONE", "rclone is not installed (Debian: apt-get install rclone)")


def rclone(env: DiskEnv, tmp: Path, user: str, secret: str, *args: str, check: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    """``rclone ARGS`` with the remote ``ark:`` pointing at the API's /dav/ as ``user``."""
    obscured = subprocess.run(["rclone", "obscure", "-"], input=secret, capture_output=True, text=True,
                              check=True).stdout.strip()
    environ = {**os.environ, "RCLONE_CONFIG": str(tmp / "rclone.conf"), "RCLONE_CONFIG_ARK_TYPE": "webdav",
               "RCLONE_CONFIG_ARK_URL": f"{env.api.url}/dav/", "RCLONE_CONFIG_ARK_VENDOR": "other",
               "RCLONE_CONFIG_ARK_USER": user, "RCLONE_CONFIG_ARK_PASS": obscured}
    return subprocess.run(["rclone", "--retries", "1", "--low-level-retries", "1", "--contimeout", "10s",
                           "--timeout", "60s", *args], env=environ, capture_output=True, text=True, check=check,
                          timeout=120)


def test_list_put_get_and_sync(disk_env: DiskEnv, tmp_path: Path) -> None:
    alice = disk_env.alice
    blob = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "blob.bin").write_bytes(blob)
    rclone(disk_env, tmp_path, alice.name, alice.password, "mkdir", "ark:datasets")
    rclone(disk_env, tmp_path, alice.name, alice.password, "copyto", str(tmp_path / "blob.bin"),
           "ark:datasets/blob.bin")
    assert (alice.root / "datasets" / "blob.bin").read_bytes() == blob
    listed = json.loads(rclone(disk_env, tmp_path, alice.name, alice.password, "lsjson", "ark:datasets").stdout)
    assert [(e["Name"], e["Size"], e["IsDir"]) for e in listed] == [("blob.bin", len(blob), False)]
    # get, with an access key as the user name and its secret key as the password
    rclone(disk_env, tmp_path, alice.ak, alice.sk, "copyto", "ark:datasets/blob.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == blob
    # a folder synced up and down again
    src = tmp_path / "photos"
    (src / "2026").mkdir(parents=True)
    for i in range(5):
        (src / "2026" / f"p{i}.jpg").write_bytes(os.urandom(1000 + i))
    rclone(disk_env, tmp_path, alice.ak, alice.sk, "sync", str(src), "ark:photos")
    assert sorted(p.name for p in (alice.root / "photos" / "2026").iterdir()) == [f"p{i}.jpg" for i in range(5)]
    rclone(disk_env, tmp_path, alice.ak, alice.sk, "sync", "ark:photos", str(tmp_path / "down"))
    for i in range(5):
        assert (tmp_path / "down" / "2026" / f"p{i}.jpg").read_bytes() == (src / "2026" / f"p{i}.jpg").read_bytes()
    # bob's rclone sees bob's disk only
    bob = disk_env.bob
    assert json.loads(rclone(disk_env, tmp_path, bob.name, bob.password, "lsjson", "ark:").stdout) == []
    wrong = rclone(disk_env, tmp_path, alice.name, "not-the-password", "lsjson", "ark:", check=False)
    assert wrong.returncode != 0 and "401" in wrong.stderr


def test_quota_refusal_stores_nothing(disk_env: DiskEnv, tmp_path: Path) -> None:
    alice = disk_env.alice
    disk_env.set_quota("alice", 1_000_000)
    (tmp_path / "fits.bin").write_bytes(b"x" * 600_000)
    (tmp_path / "big.bin").write_bytes(b"y" * 600_000)
    rclone(disk_env, tmp_path, alice.name, alice.password, "copyto", str(tmp_path / "fits.bin"), "ark:fits.bin")
    refused = rclone(disk_env, tmp_path, alice.name, alice.password, "copyto", str(tmp_path / "big.bin"),
                     "ark:big.bin", check=False)
    assert refused.returncode != 0
    assert "507" in refused.stderr or "Insufficient Storage" in refused.stderr, refused.stderr
    assert not (alice.root / "big.bin").exists()
    assert alice.http.get("/usage").json() == {"username": "alice", "used": 600_000, "reserved": 0,
                                               "limit": 1_000_000}
