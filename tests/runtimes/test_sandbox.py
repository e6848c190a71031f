"""The local runtime's sandbox where bwrap cannot run: non-admin replicas refused, admins' run unconfined."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from arkserve.errors import PermanentError
from arkserve.runtimes import sandbox
from arkserve.runtimes.base import ReplicaSpec
from arkserve.runtimes.local import LocalRuntime

from .conftest import APP_DIR, wait_http


def spec(trusted: bool) -> ReplicaSpec:
    return ReplicaSpec("svc", "r0000a1", "rev1", str(APP_DIR), f"exec {sys.executable} app.py", 8000,
                       trusted=trusted)


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "unavailable", lambda: "bwrap is not installed: " + sandbox.INSTALL_HINT)


def test_without_bwrap_a_non_admin_replica_is_refused_with_what_to_install(no_bwrap: None, tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path)
    with pytest.raises(PermanentError, match="apt-get install bubblewrap") as err:
        rt.start(spec(trusted=False))
    assert err.value.code == "SandboxUnavailable" and "--runtime docker" in err.value.message
    assert rt.list() == []


def test_without_bwrap_an_admin_replica_runs_unconfined(no_bwrap: None, tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path)
    env = wait_http(rt.start(spec(trusted=True)))
    rt.stop("svc", "r0000a1", grace_s=2)
    assert env["HOME"] != "/tmp"  # not the sandbox's private home: really unconfined


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop applies when the platform runs as root")
def test_an_app_directory_the_replica_user_cannot_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    app = tmp_path / "private-app"
    app.mkdir(mode=0o700)
    with pytest.raises(PermanentError, match="chmod -R a\\+rX"):
        LocalRuntime(tmp_path / "data").start(ReplicaSpec("svc", "r0000a1", "rev1", str(app), "true", 8000))


def test_the_hosts_pseudo_filesystems_are_refused_as_app_directories(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "data")
    for image in ("/proc", "/proc/self", "/sys", "/dev", "/run"):
        with pytest.raises(PermanentError, match="the host's own state"):
            rt.start(ReplicaSpec("svc", "r0000a1", "rev1", image, "true", 8000))


def test_the_data_dir_is_refused_as_an_app_directory(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path)
    for image in (tmp_path, tmp_path / "logs", tmp_path.parent):
        image.mkdir(exist_ok=True)
        with pytest.raises(PermanentError, match="overlaps the platform's data directory"):
            rt.start(ReplicaSpec("svc", "r0000a1", "rev1", str(image), "true", 8000))


def test_the_data_dir_under_a_system_directory_is_covered(tmp_path: Path) -> None:
    argv = sandbox.argv(sandbox.SandboxPolicy(Path("/opt/arkserve-data")), APP_DIR, (), "true")
    opt, hide = argv.index("/opt"), argv.index("/opt/arkserve-data")
    assert argv[hide - 1] == "--tmpfs" and hide > opt
