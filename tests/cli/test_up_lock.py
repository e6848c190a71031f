"""One `arkserve up` per data dir, and `status` of an `up` started on other ports than the shell's settings say
(hostile review, 2026-12-03): real processes, as `test_daemon.py` runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_daemon import _alive, _run
from tests.live import free_port, gateway_port_base


def test_a_second_up_on_the_same_data_dir_is_refused_whatever_its_ports(env: dict[str, str], tmp_path: Path) -> None:
    started = _run(env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    run = json.loads((tmp_path / "data" / "run" / "up.json").read_text())
    # the same data dir, every port another: before, it started in full, adopted the first one's replicas, stopped
    # them when it ended and removed the first one's run file
    other = {**env, "ARKSERVE_API_PORT": str(free_port()), "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port()),
             "ARKSERVE_GATEWAY_PORT_BASE": str(gateway_port_base())}
    second = _run(other, "up", timeout=60)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "already running for" in second.stderr and "arkserve is up" not in second.stdout
    assert json.loads((tmp_path / "data" / "run" / "up.json").read_text())["pid"] == run["pid"]
    # `status` from a shell whose settings name other ports finds the running one where it listens
    shell = {**env, "ARKSERVE_API_PORT": str(free_port()), "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port())}
    status = _run(shell, "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["api_url"] == f"http://127.0.0.1:{env['ARKSERVE_API_PORT']}"
    assert {p["part"]: p["health"] for p in info["parts"]}["api"] == "ready"
    assert {p["part"]: p["health"] for p in info["parts"]}["gateway"] == "ok"
    assert _run(env, "down").returncode == 0
    assert not _alive(run["pid"])
    again = _run(env, "up", "--detach")  # the lock went with the first `up`
    assert again.returncode == 0, again.stdout + again.stderr
    assert _run(env, "down").returncode == 0


def test_up_says_in_one_line_when_the_data_dir_cannot_be_used(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    failed = _run({**env, "ARKSERVE_DATA_DIR": str(blocker / "data")}, "up", timeout=60)
    assert failed.returncode == 1
    assert "cannot use the data dir" in failed.stderr and "Traceback" not in failed.stderr, failed.stderr


def test_a_detached_up_starts_a_new_log_once_the_old_one_is_large(tmp_path: Path) -> None:
    from arkserve.cli.daemon import open_up_log

    log = open_up_log(tmp_path / "data", max_bytes=1000)
    log.write_bytes(b"x" * 1000)
    assert open_up_log(tmp_path / "data", max_bytes=1000) == log and log.stat().st_size == 1000  # not past it
    log.write_bytes(b"y" * 1001)
    open_up_log(tmp_path / "data", max_bytes=1000)
    assert not log.exists() and Path(f"{log}.1").read_bytes() == b"y" * 1001


def test_backup_copies_the_registrys_images(env: dict[str, str], tmp_path: Path) -> None:
    """`arkserve backup` takes the platform registry's storage along (links and blobs, not uploads in progress):
    a restore without it lost every pushed image. The copy itself is tested against a real registry in
    tests/registry/test_registry_backup.py."""
    assert _run(env, "init").returncode == 0
    v2 = tmp_path / "data" / "registry" / "docker" / "registry" / "v2"
    link = v2 / "repositories" / "alice" / "app" / "_layers" / "sha256" / "ab12" / "link"
    blob = v2 / "blobs" / "sha256" / "ab" / "ab12" / "data"
    upload = v2 / "repositories" / "alice" / "app" / "_uploads" / "u1" / "data"
    for path, text in ((link, "sha256:ab12"), (blob, "layer bytes"), (upload, "half a push")):
        path.parent.mkdir(parents=True)
        path.write_text(text)
    dest = tmp_path / "backup"
    done = _run(env, "backup", str(dest))
    assert done.returncode == 0, done.stderr
    copied = dest / "registry" / "docker" / "registry" / "v2"
    assert (copied / link.relative_to(v2)).read_text() == "sha256:ab12"
    assert (copied / blob.relative_to(v2)).read_text() == "layer bytes"
    assert not (copied / "repositories" / "alice" / "app" / "_uploads").exists()
    assert "registry" in done.stdout
