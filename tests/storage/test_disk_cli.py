"""``arkserve disk`` as a user runs it: the real command in a subprocess against a live API on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.storage.conftest import DiskEnv, DiskUser


def _env(env: DiskEnv, user: DiskUser, tmp: Path) -> dict[str, str]:
    return {**os.environ, "ARKSERVE_ENDPOINT": env.api.url, "ARKSERVE_ACCESS_KEY": user.ak,
            "ARKSERVE_SECRET_KEY": user.sk, "ARKSERVE_CLI_CONFIG": str(tmp / "none.yaml"), "COLUMNS": "200"}


def _ark(env: DiskEnv, tmp: Path, *args: str, user: DiskUser | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arkserve", "disk", *args], capture_output=True, text=True,
                          env=_env(env, user or env.alice, tmp), cwd=cwd or tmp, timeout=120)


def test_put_get_ls_mv_rm_du_mkdir(disk_env: DiskEnv, tmp_path: Path) -> None:
    src = tmp_path / "flowers"
    (src / "daisy").mkdir(parents=True)
    (src / "daisy" / "1.jpg").write_bytes(os.urandom(5000))
    (src / "class_indices.json").write_text('{"0": "daisy"}')
    r = _ark(disk_env, tmp_path, "put", str(src), "/datasets/")
    assert r.returncode == 0, r.stderr
    assert "uploaded 2 file(s)" in r.stdout
    assert (disk_env.alice.root / "datasets/flowers/daisy/1.jpg").read_bytes() == (src / "daisy/1.jpg").read_bytes()
    ls = _ark(disk_env, tmp_path, "ls", "/datasets/flowers")
    assert ls.returncode == 0 and "class_indices.json" in ls.stdout and "daisy" in ls.stdout
    as_json = _ark(disk_env, tmp_path, "ls", "datasets/flowers", "-o", "json")
    assert '"path": "datasets/flowers/daisy"' in as_json.stdout
    out = tmp_path / "back"
    got = _ark(disk_env, tmp_path, "get", "/datasets/flowers", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "daisy" / "1.jpg").read_bytes() == (src / "daisy" / "1.jpg").read_bytes()
    assert (out / "class_indices.json").read_text() == '{"0": "daisy"}'
    assert _ark(disk_env, tmp_path, "mkdir", "/tmp2/deep").returncode == 0
    assert _ark(disk_env, tmp_path, "mv", "datasets/flowers/class_indices.json", "tmp2/ci.json").returncode == 0
    assert (disk_env.alice.root / "tmp2/ci.json").exists()
    assert _ark(disk_env, tmp_path, "rm", "--yes", "-r", "tmp2").returncode == 0
    assert not (disk_env.alice.root / "tmp2").exists()
    du = _ark(disk_env, tmp_path, "du", "-o", "json")
    assert '"used": 5000' in du.stdout
    single = _ark(disk_env, tmp_path, "get", "datasets/flowers/daisy/1.jpg", cwd=tmp_path)
    assert single.returncode == 0 and (tmp_path / "1.jpg").read_bytes() == (src / "daisy/1.jpg").read_bytes()


def test_exit_codes(disk_env: DiskEnv, tmp_path: Path) -> None:
    missing = _ark(disk_env, tmp_path, "get", "nope.bin")
    assert missing.returncode == 1 and "PathNotFound" in missing.stderr
    for args in (["ls", "a/../.."], ["rm", "../x", "--yes"], ["get", "./x"]):  # refused before a request: exit 2
        attack = _ark(disk_env, tmp_path, *args)
        assert attack.returncode == 2 and "invalid disk path" in attack.stderr, attack.stderr
    env = _env(disk_env, disk_env.alice, tmp_path)
    env["ARKSERVE_SECRET_KEY"] = disk_env.bob.sk  # alice's AK with another SK: the signature fails
    denied = subprocess.run([sys.executable, "-m", "arkserve", "disk", "ls"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert denied.returncode == 3, denied.stderr  # authentication failure (docs/cli.md)
    disk_env.set_quota("alice", 10)
    (tmp_path / "big").write_bytes(b"x" * 11)
    over = _ark(disk_env, tmp_path, "put", str(tmp_path / "big"))
    assert over.returncode == 1 and "QuotaExceeded" in over.stderr


def test_put_resumes_after_being_killed(disk_env: DiskEnv, tmp_path: Path) -> None:
    data = os.urandom(24 * 1024 * 1024)
    (tmp_path / "weights.bin").write_bytes(data)
    a = disk_env.alice.http
    proc = subprocess.Popen([sys.executable, "-m", "arkserve", "disk", "put", str(tmp_path / "weights.bin"),
                             "models/", "--part-size", "1"], env=_env(disk_env, disk_env.alice, tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        sessions = a.get("/uploads").json()
        if sessions and sessions[0]["offset"] >= 3 * 1024 * 1024:
            break
        assert proc.poll() is None and time.monotonic() < deadline, "the upload ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert not (disk_env.alice.root / "models" / "weights.bin").exists()
    again = _ark(disk_env, tmp_path, "put", str(tmp_path / "weights.bin"), "models/")
    assert again.returncode == 0, again.stderr
    assert "resuming models/weights.bin at byte" in again.stderr
    assert (disk_env.alice.root / "models" / "weights.bin").read_bytes() == data
    assert a.get("/uploads").json() == []


def test_get_resumes_a_partial_download_and_refetches_a_changed_file(disk_env: DiskEnv, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    a = disk_env.alice.http
    a.put("/files/f.bin", content=data)
    etag = a.get("/files/f.bin", headers={"Range": "bytes=0-0"}).headers["etag"]
    # a .part from an earlier, interrupted run (its bytes marked, to see that only the rest is fetched)
    (tmp_path / "f.bin.part").write_bytes(b"\0" * 100_000)
    (tmp_path / "f.bin.part.etag").write_text(etag)
    assert _ark(disk_env, tmp_path, "get", "f.bin").returncode == 0
    assert (tmp_path / "f.bin").read_bytes() == b"\0" * 100_000 + data[100_000:]
    assert not (tmp_path / "f.bin.part").exists()
    # the file changed since the .part was written: If-Range makes the server send it whole
    (tmp_path / "f.bin").unlink()
    (tmp_path / "f.bin.part").write_bytes(b"\0" * 100_000)
    (tmp_path / "f.bin.part.etag").write_text('"stale"')
    assert _ark(disk_env, tmp_path, "get", "f.bin").returncode == 0
    assert (tmp_path / "f.bin").read_bytes() == data


def test_put_and_get_start_without_the_heavy_imports(disk_env: DiskEnv, tmp_path: Path) -> None:
    """``arkserve disk put|get`` (a real transfer each) never import ``requests`` (the SDK's requests signer)
    nor ``cryptography`` (the server's vault): each cost every start of the command ~70 / ~15 ms."""
    (tmp_path / "f.bin").write_bytes(os.urandom(2 << 20))
    code = ("import sys\nfrom arkserve.cli.main import main\ntry:\n    main()\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\nprint(sorted(m for m in ('requests', 'cryptography') if m in sys.modules))")
    for args in (["put", str(tmp_path / "f.bin"), "f.bin"], ["get", "f.bin", str(tmp_path / "back.bin")]):
        r = subprocess.run([sys.executable, "-c", code, "disk", *args], capture_output=True, text=True,
                           env=_env(disk_env, disk_env.alice, tmp_path), cwd=tmp_path, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout
    assert (tmp_path / "back.bin").read_bytes() == (tmp_path / "f.bin").read_bytes()
