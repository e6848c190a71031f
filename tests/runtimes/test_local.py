"""Local-runtime specifics: process groups, GPUs, env hygiene, pid-reuse guard, log rotation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from arkserve.errors import PermanentError, TemporaryError, ValidationFailed
from arkserve.logs import log_dir_for, read_logs
from arkserve.runtimes import sandbox
from arkserve.runtimes.base import Mount, ReplicaPhase, ReplicaSpec, object_name
from arkserve.runtimes.local import LocalRuntime

from .conftest import APP_DIR, ROOT, wait_http, wait_until

PY = sys.executable


def spec(command: str, replica: str = "r0000a1", **kw: object) -> ReplicaSpec:
    return ReplicaSpec(service="svc", replica=replica, revision="rev1", image=str(APP_DIR), command=command,
                       port=8000, **kw)  # type: ignore[arg-type]


@pytest.fixture
def rt(tmp_path: Path) -> LocalRuntime:
    return LocalRuntime(tmp_path, gpu_count=2, base_env={"PATH": os.environ["PATH"], "ARKSERVE_SECRET": "x",
                                                         "PGPASSWORD": "the-operator's", "LANG": "C.UTF-8"})


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _descendants(pid: int) -> dict[int, str]:
    """Host pid -> command line of every live descendant of ``pid`` (the sandbox hides them from the app), or of
    the members of process group ``pid`` where that process is gone (the sandbox's dropped bwrap monitor)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
        groups[int(stat.parent.name)] = int(fields[2])
    found: dict[int, str] = {}
    frontier = [pid] if pid in parents else [p for p, g in groups.items() if g == pid]
    while frontier:
        p = frontier.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                try:
                    found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except (FileNotFoundError, ProcessLookupError):
                    found[child] = ""
                frontier.append(child)
    return found


def _sleeper(pid: int) -> int | None:
    return next((c for c, cmd in _descendants(pid).items() if cmd.startswith("sleep 300")), None)


def test_children_die_with_the_replica(rt: LocalRuntime) -> None:
    info = rt.start(spec(f"exec {PY} app.py child /tmp/child.pid"))
    wait_http(info)
    child = _sleeper(int(info.runtime_id))
    assert child is not None and not _dead(child)
    rt.stop("svc", "r0000a1", grace_s=5)
    wait_until(lambda: _dead(child), timeout=5, what="the child to die")


def test_orphaned_children_of_a_crashed_leader_are_killed_on_stop(rt: LocalRuntime) -> None:
    info = rt.start(spec("sleep 300 & echo started; sleep 1; exit 5"))
    wait_until(lambda: _sleeper(int(info.runtime_id)) is not None, what="the background child")
    child = _sleeper(int(info.runtime_id))
    assert child is not None
    wait_until(lambda: (i := rt.inspect("svc", "r0000a1")) is not None and i.phase is ReplicaPhase.EXITED)
    got = rt.inspect("svc", "r0000a1")
    assert got is not None and got.exit_code == 5
    assert not _dead(child)
    rt.stop("svc", "r0000a1", grace_s=5)
    wait_until(lambda: _dead(child), timeout=5, what="the orphaned child to die")


def test_gpus_round_robin_and_insufficient(rt: LocalRuntime) -> None:
    envs = []
    for replica, gpus in (("r0000a1", 1), ("r0000a2", 1), ("r0000a3", 0)):
        envs.append(wait_http(rt.start(spec(f"exec {PY} app.py", replica, gpus=gpus))))
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", ""]
    with pytest.raises(TemporaryError, match="insufficient GPUs: want 3, have 2"):
        rt.start(spec("true", "r0000a4", gpus=3))
    for replica in ("r0000a1", "r0000a2", "r0000a3"):
        rt.stop("svc", replica, grace_s=2)


def test_env_hygiene_port_and_model_dir(rt: LocalRuntime, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    tricky = "a b 'c' \"$HOME\" `id` $(id) \\ end"  # (no newline: /env answers one line per variable)
    info = rt.start(spec(f"exec {PY} app.py", mounts=(Mount(str(model), "/model"),), env={"TRICKY": tricky}))
    env = wait_http(info)
    rt.stop("svc", "r0000a1", grace_s=2)
    assert "ARKSERVE_SECRET" not in env and "PGPASSWORD" not in env  # the platform's own stays with it
    assert env["LANG"] == "C.UTF-8" and env["PATH"] == os.environ["PATH"]
    assert env["TRICKY"] == tricky  # the spec's env arrives byte for byte through the shell
    assert env["PORT"] == env["ARK_PORT"] == str(info.port) and info.port != 8000
    assert env["ARK_MODEL_DIR"] == "/model" and env["ARK_REVISION"] == "rev1"
    assert Path(env["TEST_APP_CWD"]) == APP_DIR


PRELOAD_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void) {
    FILE *f = fopen(MARKER, "a");
    if (f) { fprintf(f, "uid=%d euid=%d\n", (int)getuid(), (int)geteuid()); fclose(f); }
}
"""


def test_ld_preload_in_a_spec_never_reaches_the_sandbox_tools(rt: LocalRuntime, tmp_path: Path,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    """A service's env is applied by the replica's shell, after the switch to the replica user: bwrap and
    setpriv (root when the platform is) never load a library the user names. The library below writes to a
    host path the sandbox does not show, so only a load outside the sandbox can leave the marker."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("a C compiler is needed to build the preload library (apt-get install gcc)")
    marker = tmp_path / "outside" / "loaded"
    marker.parent.mkdir()
    marker.parent.chmod(0o777)
    app = tmp_path_factory.mktemp("preload") / "app"  # (not in the runtime's data dir, tmp_path)
    shutil.copytree(APP_DIR, app)
    (app / "evil.c").write_text(PRELOAD_C)
    subprocess.run([gcc, "-shared", "-fPIC", f'-DMARKER="{marker}"', "-o", str(app / "evil.so"),
                    str(app / "evil.c")], check=True)
    app.chmod(0o755)
    (app / "evil.so").chmod(0o755)
    info = rt.start(ReplicaSpec("svc", "r0000a1", "rev1", str(app), f"exec {PY} app.py", 8000,
                                env={"LD_PRELOAD": str(app / "evil.so")}))
    env = wait_http(info)
    rt.stop("svc", "r0000a1", grace_s=2)
    assert env["LD_PRELOAD"] == str(app / "evil.so")  # the app has it, as the user asked
    assert not marker.exists(), marker.read_text()  # nothing outside the sandbox loaded it


def test_a_replica_sees_only_its_own_gpus_device_nodes(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    (dev / "nvidia-caps").mkdir(parents=True)
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"):
        (dev / name).touch()
    names = lambda gpus: sorted(Path(p).name for p in sandbox.gpu_devices(gpus, dev))  # noqa: E731
    assert names([]) == []  # a CPU replica: no GPU node at all
    assert names([1]) == ["nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools", "nvidia1", "nvidiactl"]
    assert names([0, 2]) == ["nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia2", "nvidiactl"]


def test_invalid_specs_are_permanent(rt: LocalRuntime, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="does not exist"):
        rt.start(ReplicaSpec("svc", "r0000a1", "rev1", f"dir:{tmp_path}/missing", "true", 8000))
    with pytest.raises(PermanentError, match="command"):
        rt.start(spec("  "))
    with pytest.raises(PermanentError, match="mount source"):
        rt.start(spec("true", mounts=(Mount(f"{tmp_path}/nope", "/m"),)))
    with pytest.raises(ValidationFailed):
        rt.start(spec("true", replica="bad_id"))
    assert rt.list() == []


def test_pid_reuse_is_not_mistaken_for_the_replica(rt: LocalRuntime) -> None:
    """A state file whose pid now belongs to another process (here: this test) is EXITED; stop spares it."""
    state = {"service": "svc", "replica": "r0000a1", "revision": "rev1", "pid": os.getpid(), "port": 1,
             "started_at": 1.0, "proc_start": 1, "exit_code": None}
    (rt.state_dir / f"{object_name('svc', 'r0000a1')}.json").write_text(json.dumps(state))
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and info.phase is ReplicaPhase.EXITED and info.exit_code is None
    rt.stop("svc", "r0000a1", grace_s=0)  # must not signal our own process group
    assert rt.list() == []


def test_adopted_replica_that_dies_has_unknown_exit_code(tmp_path: Path) -> None:
    code = (f"from pathlib import Path; from arkserve.runtimes.local import LocalRuntime\n"
            f"from arkserve.runtimes.base import ReplicaSpec\n"
            f"print(LocalRuntime(Path({str(tmp_path)!r})).start(ReplicaSpec('svc', 'r0000a1', 'rev1', "
            f"{str(APP_DIR)!r}, 'exec sleep 300', 8000)).runtime_id)\n")
    out = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    pid = int(out.stdout)
    rt = LocalRuntime(tmp_path)
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and info.phase is ReplicaPhase.RUNNING and info.runtime_id == str(pid)
    os.killpg(pid, signal.SIGKILL)  # its processes: bwrap's monitor (if still there), the sandbox's init, the app
    wait_until(lambda: not _descendants(pid) and _dead(pid), what="the adopted processes to die")
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and info.phase is ReplicaPhase.EXITED and info.exit_code is None
    rt.stop("svc", "r0000a1")


def test_signal_exit_code_and_previous_logs_on_restart(rt: LocalRuntime, tmp_path: Path) -> None:
    rt.start(spec("echo first run; kill -KILL $$"))
    wait_until(lambda: (i := rt.inspect("svc", "r0000a1")) is not None and i.phase is ReplicaPhase.EXITED)
    info = rt.inspect("svc", "r0000a1")
    assert info is not None and info.exit_code == 137
    wait_until(lambda: read_logs(log_dir_for(tmp_path), "svc", "r0000a1"), what="first run's output")
    rt.start(spec("echo second run; sleep 300"))  # same id again: the exited one is replaced
    wait_until(lambda: [x.text for x in read_logs(log_dir_for(tmp_path), "svc", "r0000a1")] == ["second run"],
               what="second run's output, alone in the current log")
    assert [x.text for x in read_logs(log_dir_for(tmp_path), "svc", "r0000a1")] == ["second run"]
    assert [x.text for x in read_logs(log_dir_for(tmp_path), "svc", "r0000a1", previous=True)] == ["first run"]
    rt.stop("svc", "r0000a1", grace_s=0)


def test_parallel_stops_while_listing_leave_nothing_behind(rt: LocalRuntime) -> None:
    """A list() that sees a replica exit must not write back the state file a concurrent stop() removed."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    replicas = [f"r0000e{i:02x}" for i in range(40)]
    for r in replicas:
        rt.start(spec("exec sleep 300", r))
    done = threading.Event()

    def keep_listing() -> None:
        while not done.is_set():
            rt.list()

    lister = threading.Thread(target=keep_listing)
    lister.start()
    try:
        with ThreadPoolExecutor(12) as pool:
            list(pool.map(lambda r: rt.stop("svc", r, grace_s=2), replicas))
    finally:
        done.set()
        lister.join(10)
    assert rt.list() == []
