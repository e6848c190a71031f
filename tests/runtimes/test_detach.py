"""A sandboxed replica without bwrap's monitor (runtimes/detach.py): one platform process beside the app, a
graceful stop that still reaches the app, exit codes, and adoption by a platform that restarted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve.runtimes.base import ReplicaPhase, ReplicaSpec
from arkserve.runtimes.local import LocalRuntime

from .conftest import ROOT, wait_until

PY = sys.executable
SLOW_APP = ROOT / "tests" / "reconciler" / "app.py"  # exits on SIGTERM once the requests it answers are answered


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, process group) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return raw[raw.index("(") + 1: raw.rindex(")")], int(fields[1]), int(fields[2])


def group(pgid: int) -> dict[int, tuple[str, int, int]]:
    """Every live (not zombie) process of process group ``pgid``."""
    out = {}
    for entry in Path("/proc").iterdir():
        if (entry.name.isdigit() and (st := _stat(int(entry.name))) is not None and st[2] == pgid
                and Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")):
            out[int(entry.name)] = st
    return out


def state(data_dir: Path, replica: str) -> dict[str, object]:
    return dict(json.loads((data_dir / "replicas" / f"ark-svc-{replica}.json").read_text()))


def detached(data_dir: Path, replica: str) -> bool:
    return bool(state(data_dir, replica).get("init_pid"))


def spec(app_dir: Path, command: str, replica: str = "r0000a1", **env: str) -> ReplicaSpec:
    return ReplicaSpec("svc", replica, "rev1", str(app_dir), command, 8000, env=env)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[LocalRuntime]:
    """The runtime of the test; whatever it leaves running (a failed test) is stopped after it."""
    runtime = LocalRuntime(tmp_path / "data")
    yield runtime
    for info in runtime.list():
        runtime.stop(info.service, info.replica, grace_s=0)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(SLOW_APP, app / "app.py")
    tmp_path.chmod(0o755)  # the replica user (nobody, under root) reads it
    return app


def test_a_sandboxed_replica_is_one_platform_process_beside_its_app(
        rt: LocalRuntime, tmp_path: Path, app_dir: Path) -> None:
    info = rt.start(spec(app_dir, "exec sleep 300"))
    pgid = int(info.runtime_id)
    assert state(tmp_path / "data", "r0000a1")["sandboxed"]
    wait_until(lambda: detached(tmp_path / "data", "r0000a1"), what="the monitor to be dropped")
    wait_until(lambda: sorted(name for name, _, _ in group(pgid).values()) == ["bwrap", "sleep"],
               what="the sandbox's init and the app, and no monitor")  # the app is bwrap until it has exec'd
    procs = group(pgid)
    init = next(pid for pid, (name, _, _) in procs.items() if name == "bwrap")
    assert procs[init][1] == os.getpid(), "the init is this process's child now (its exit code is reaped here)"
    assert pgid not in procs
    listed = rt.inspect("svc", "r0000a1")
    assert listed is not None and listed.phase is ReplicaPhase.RUNNING and listed.runtime_id == str(pgid)
    rt.stop("svc", "r0000a1", grace_s=5)
    assert group(pgid) == {} and rt.inspect("svc", "r0000a1") is None


def test_exit_code_of_a_sandboxed_app_after_its_monitor_is_dropped(
        rt: LocalRuntime, tmp_path: Path, app_dir: Path) -> None:
    release = app_dir / "release"  # the sandbox sees its app directory (read-only), where the test writes
    rt.start(spec(app_dir, f"while [ ! -e {release} ]; do sleep 0.02; done; exit 7"))
    wait_until(lambda: detached(tmp_path / "data", "r0000a1"), what="the monitor to be dropped")
    release.touch()
    wait_until(lambda: (i := rt.inspect("svc", "r0000a1")) is not None and i.phase is ReplicaPhase.EXITED,
               what="the replica to exit")
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and info.exit_code == 7
    rt.stop("svc", "r0000a1", grace_s=1)


def _slow_request(port: int, out: list[object]) -> None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/slow", timeout=20) as resp:
            out.append(resp.status)
    except OSError as exc:
        out.append(exc)


def test_a_graceful_stop_of_a_sandboxed_app_finishes_its_request(
        rt: LocalRuntime, tmp_path: Path, app_dir: Path) -> None:
    """SIGTERM reaches the app (not only the sandbox's init, which ignores it as a namespace's PID 1 does)."""
    info = rt.start(spec(app_dir, f"exec {PY} app.py", DELAY_S="1.5"))
    wait_until(lambda: detached(tmp_path / "data", "r0000a1"), what="the monitor to be dropped")
    wait_until(lambda: _answers(info.port), timeout=30, what="the app to answer")
    got: list[object] = []
    client = threading.Thread(target=_slow_request, args=(info.port, got))
    client.start()
    time.sleep(0.5)  # the request is in the app (it takes 1.5 s): a stop now must let it finish
    t0 = time.monotonic()
    rt.stop("svc", "r0000a1", grace_s=10)
    took = time.monotonic() - t0
    client.join(20)
    assert got == [200], got
    assert took < 8, f"the app ended on SIGTERM, not at the grace period's SIGKILL ({took:.1f} s)"
    assert group(int(info.runtime_id)) == {}


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def test_a_restarted_platform_adopts_and_stops_a_detached_sandbox(
        rt: LocalRuntime, tmp_path: Path, app_dir: Path) -> None:
    """Another process starts the replica, drops its monitor and exits; this one adopts and stops it."""
    data = tmp_path / "data"
    code = (f"import time\nfrom pathlib import Path\nfrom arkserve.runtimes.base import ReplicaSpec\n"
            f"from arkserve.runtimes.local import LocalRuntime\nrt = LocalRuntime(Path({str(data)!r}))\n"
            f"info = rt.start(ReplicaSpec('svc', 'r0000a1', 'rev1', {str(app_dir)!r}, 'exec {PY} app.py', 8000))\n"
            "deadline = time.monotonic() + 30\n"
            "while rt._detacher.pending() and time.monotonic() < deadline:\n    time.sleep(0.01)\n"
            "print(info.runtime_id)\n")
    out = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pgid = int(out.stdout.split()[0])
    assert detached(data, "r0000a1")
    adopted = rt.inspect("svc", "r0000a1")
    assert adopted is not None and adopted.phase is ReplicaPhase.RUNNING and adopted.runtime_id == str(pgid)
    wait_until(lambda: _answers(adopted.port), timeout=30, what="the adopted app to answer")
    procs = group(pgid)
    assert len(procs) == 2 and "bwrap" in {name for name, _, _ in procs.values()}, procs  # init + app
    t0 = time.monotonic()
    rt.stop("svc", "r0000a1", grace_s=10)
    assert time.monotonic() - t0 < 8, "the adopted app ended on SIGTERM"
    assert group(pgid) == {} and rt.inspect("svc", "r0000a1") is None and rt.list() == []
