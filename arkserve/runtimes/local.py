"""The local runtime: replicas are sandboxed process groups on this host (the embedded default).

IMAGE is a directory (``dir:/path`` or a plain path); COMMAND runs as ``/bin/sh -c`` with
that directory as working directory, in a session of its own so that stopping the replica
(SIGTERM to the group, grace, SIGKILL) takes its children along. Each replica gets a free
loopback port in ``PORT``/``ARK_PORT`` (``ReplicaSpec.port`` is only the app's declared port),
``ARK_SERVICE``, ``ARK_REPLICA``, ``ARK_REVISION``, the user env and ``CUDA_VISIBLE_DEVICES``
(round-robin over the host's GPUs). The inherited environment drops ``ARKSERVE_*``.

Every replica runs inside a bubblewrap sandbox (:mod:`arkserve.runtimes.sandbox`): no view of the
data directory, a read-only system, its mounts at their targets (``ARK_MODEL_DIR`` = the first
mount's target, as on docker), and an unprivileged uid when the platform runs as root. Where
``bwrap`` cannot run, replicas of non-admin owners are refused (``SandboxUnavailable``, saying
what to install) and admins' run unconfined, with the mount *source* as ``ARK_MODEL_DIR``.

Output goes through a detached ``python -m arkserve.logs pump`` process into
``<data_dir>/logs/<service>/<replica>.log``; it outlives the reconciler, so a replica never
writes into a dead pipe. Adoption: ``<data_dir>/replicas/<ark-name>.json`` records pid,
port, revision, start time and the kernel's process start time (guards against pid reuse),
so a new instance in a new process lists, inspects and stops what an old one started. Exit
codes of processes this process did not spawn are unknown (None).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import arkserve
from arkserve.errors import PermanentError, TemporaryError
from arkserve.logs import DEFAULT_MAX_BYTES, log_dir_for, log_path, rotate
from arkserve.runtimes import sandbox
from arkserve.runtimes.base import (
    ReplicaInfo,
    ReplicaPhase,
    ReplicaSpec,
    checked_object_name,
    object_name,
    parse_object_name,
)

# Children spawned by this process, shared by every LocalRuntime in it so exit codes are reaped once.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()


@atexit.register
def _leave_children_running() -> None:
    """Replicas outlive this process on purpose: a restarted reconciler adopts them. Forget them without
    Popen's "subprocess is still running" warning at interpreter exit."""
    with _CHILDREN_LOCK:
        for proc in _CHILDREN.values():
            if proc.poll() is None:
                proc.returncode = 0  # not ours to wait for any more
        _CHILDREN.clear()


@dataclass(frozen=True)
class _State:
    service: str
    replica: str
    revision: str
    pid: int
    port: int
    started_at: float
    proc_start: int  # field 22 of /proc/<pid>/stat
    exit_code: int | None = None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def _reap(pid: int) -> int | None:
    """Exit code of a child of this process once it ended (128+N for signal N), else None."""
    with _CHILDREN_LOCK:
        proc = _CHILDREN.get(pid)
        rc = proc.poll() if proc is not None else None
        if rc is not None:
            del _CHILDREN[pid]
    return None if rc is None else (128 - rc if rc < 0 else rc)


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host_gpus() -> int:
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


class LocalRuntime:
    name = "local"

    def __init__(self, data_dir: Path, *, gpu_count: int | None = None,
                 log_max_bytes: int = DEFAULT_MAX_BYTES, base_env: Mapping[str, str] | None = None,
                 replica_user: str = "nobody", sandbox_paths: tuple[str, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.policy = sandbox.policy_for(self.data_dir, replica_user=replica_user, extra_paths=sandbox_paths)
        self.log_dir = log_dir_for(self.data_dir)
        self.state_dir = self.data_dir / "replicas"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.gpu_count = _host_gpus() if gpu_count is None else gpu_count
        self.log_max_bytes = log_max_bytes
        env = os.environ if base_env is None else base_env
        self._base_env = {k: v for k, v in env.items() if not k.startswith("ARKSERVE_")}
        self._lock = threading.Lock()
        self._gpu_next = 0

    # -- state files -------------------------------------------------------------------------
    def _path(self, service: str, replica: str) -> Path:
        return self.state_dir / f"{object_name(service, replica)}.json"

    def _load(self, path: Path) -> _State | None:
        try:
            return _State(**json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _save(self, state: _State) -> None:
        path = self._path(state.service, state.replica)
        tmp = path.with_suffix(f".tmp{threading.get_ident()}")
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, path)

    def _alive(self, st: _State) -> bool:
        ps = _proc_stat(st.pid)
        return ps is not None and ps[1] == st.proc_start and ps[0] not in ("Z", "X")

    def _refresh(self, st: _State) -> _State:
        """Record the exit code once the process is seen gone (known only for our own children)."""
        if st.exit_code is not None:
            return st
        rc = _reap(st.pid)
        if rc is None and self._alive(st):
            return st
        if rc is not None:
            st = replace(st, exit_code=rc)
            self._save(st)
        return st

    def _info(self, st: _State) -> ReplicaInfo:
        running = st.exit_code is None and self._alive(st)
        return ReplicaInfo(service=st.service, replica=st.replica, revision=st.revision,
                           phase=ReplicaPhase.RUNNING if running else ReplicaPhase.EXITED,
                           host="127.0.0.1", port=st.port, started_at=st.started_at,
                           exit_code=st.exit_code, runtime_id=str(st.pid))

    # -- the Runtime interface ---------------------------------------------------------------
    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        checked_object_name(spec.service, spec.replica)
        app_dir = Path(spec.image.removeprefix("dir:")).expanduser()
        if not app_dir.is_dir():
            raise PermanentError(f'image directory "{app_dir}" does not exist', code="ImageNotFound")
        if sandbox.inside_data_dir(app_dir, self.data_dir):
            raise PermanentError(f'image directory "{app_dir}" overlaps the platform\'s data directory; '
                                 "use a directory of its own", code="ValidationFailed")
        if not spec.command.strip():
            raise PermanentError("the local runtime needs a command", code="ValidationFailed")
        for m in spec.mounts:
            if not Path(m.source).exists():
                raise PermanentError(f'mount source "{m.source}" does not exist', code="ValidationFailed")
        existing = self.inspect(spec.service, spec.replica)
        if existing is not None and existing.phase is ReplicaPhase.RUNNING:
            return existing
        if existing is not None:
            self._path(spec.service, spec.replica).unlink(missing_ok=True)
        with self._lock:
            # exactly the GPUs placement assigned (arkserve/capacity); without a placement, the old round robin
            gpus = ",".join(map(str, spec.gpu_indices)) if spec.gpu_indices else self._assign_gpus(spec.gpus)
            port = self._free_port()
            env = {**self._base_env, **spec.env, "PORT": str(port), "ARK_PORT": str(port),
                   "ARK_SERVICE": spec.service, "ARK_REPLICA": spec.replica, "ARK_REVISION": spec.revision,
                   "CUDA_VISIBLE_DEVICES": gpus}
            argv = sandbox.command_line(self.policy, spec, app_dir)
            if spec.mounts:
                env["ARK_MODEL_DIR"] = (spec.mounts[0].target if argv[0] != "/bin/sh"
                                        else str(Path(spec.mounts[0].source).resolve()))
            logfile = log_path(self.log_dir, spec.service, spec.replica)
            logfile.parent.mkdir(parents=True, exist_ok=True)
            rotate(logfile)
            read_end, write_end = os.pipe()
            try:
                self._spawn_pump(read_end, logfile, spec.replica)
                proc = subprocess.Popen(argv, cwd=app_dir, env=env,
                                        stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,
                                        start_new_session=True)
            except OSError as exc:
                raise TemporaryError(f"cannot start {spec.command!r}: {exc}") from exc
            finally:
                os.close(read_end)
                os.close(write_end)
            with _CHILDREN_LOCK:
                _CHILDREN[proc.pid] = proc
            ps = _proc_stat(proc.pid)
            st = _State(spec.service, spec.replica, spec.revision, proc.pid, port, time.time(),
                        ps[1] if ps else 0)
            self._save(st)
        return self._info(self._refresh(st))

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        path = self._path(service, replica)
        st = self._load(path)
        if st is None:
            return
        ps = _proc_stat(st.pid)
        # Signal the group only while it is provably ours: the leader with the recorded start
        # time, or orphaned members of a group whose leader is gone (Linux keeps that pgid unused).
        if (ps is None or ps[1] == st.proc_start) and _group_alive(st.pid):
            self._signal_and_wait(st.pid, grace_s)
        _reap(st.pid)
        with self._lock:  # a start() of the same replica id may have replaced the state meanwhile: keep that
            current = self._load(path)
            if current is not None and current.pid == st.pid:
                path.unlink(missing_ok=True)

    def _signal_and_wait(self, pgid: int, grace_s: float) -> None:
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not _group_alive(pgid):
                    return
                time.sleep(0.02)

    def list(self) -> list[ReplicaInfo]:
        out = []
        for path in sorted(self.state_dir.glob("*.json")):
            if parse_object_name(path.stem) is None:
                continue
            st = self._load(path)
            if st is not None:
                out.append(self._info(self._refresh(st)))
        return out

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        st = self._load(self._path(service, replica))
        return None if st is None else self._info(self._refresh(st))

    def close(self) -> None:
        """Nothing to release: replicas and their log pumps run on without this object."""

    # -- helpers -----------------------------------------------------------------------------
    def _assign_gpus(self, want: int) -> str:
        if want <= 0:
            return ""
        if want > self.gpu_count:
            raise TemporaryError(f"insufficient GPUs: want {want}, have {self.gpu_count}",
                                 code="InsufficientCapacity")
        ids = [str((self._gpu_next + i) % self.gpu_count) for i in range(want)]
        self._gpu_next = (self._gpu_next + want) % self.gpu_count
        return ",".join(ids)

    def _free_port(self) -> int:
        taken = {st.port for p in self.state_dir.glob("*.json") if (st := self._load(p)) is not None}
        for _ in range(50):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port: int = s.getsockname()[1]
            if port not in taken:
                return port
        raise TemporaryError("no free loopback port")

    def _spawn_pump(self, read_end: int, logfile: Path, replica: str) -> None:
        """Start the log pump detached (via an exiting shell) so init reaps it, not us."""
        pkg_root = str(Path(arkserve.__file__).resolve().parent.parent)
        env = {"PATH": self._base_env.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": pkg_root}
        # via fd 3: an asynchronous command's stdin is /dev/null unless redirected explicitly.
        script = 'exec 3<&0; "$0" -m arkserve.logs pump "$1" "$2" "$3" <&3 3<&- &'
        subprocess.run(["/bin/sh", "-c", script, sys.executable, str(logfile), replica,
                        str(self.log_max_bytes)], stdin=read_end, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=env, start_new_session=True, check=True)
