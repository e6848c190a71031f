"""The local runtime: replicas are sandboxed process groups on this host (the embedded default).

IMAGE is a directory (``dir:/path`` or a plain path); COMMAND runs as ``/bin/sh -c`` with
that directory as working directory, in a session of its own so that stopping the replica
(SIGTERM to the group, grace, SIGKILL) takes its children along. Each replica gets a free
loopback port in ``PORT``/``ARK_PORT`` (``ReplicaSpec.port`` is only the app's declared port),
``ARK_SERVICE``, ``ARK_REPLICA``, ``ARK_REVISION``, the user env and ``CUDA_VISIBLE_DEVICES``
(round-robin over the host's GPUs). Of the platform's own environment a replica inherits only ``KEPT_ENV``; the
replica's environment reaches its shell after the switch to the replica user (``sandbox.env_script``).

Every replica runs inside a bubblewrap sandbox (:mod:`arkserve.runtimes.sandbox`): no view of the
data directory, a read-only system, its mounts at their targets (``ARK_MODEL_DIR`` = the first
mount's target, as on docker), and an unprivileged uid when the platform runs as root. Where
``bwrap`` cannot run, replicas of non-admin owners are refused (``SandboxUnavailable``, saying
what to install) and admins' run unconfined, with the mount *source* as ``ARK_MODEL_DIR``.

Output: the replica's stdout and stderr are a spool file of its own, which ONE pump process per data
directory turns into ``<data_dir>/logs/<service>/<replica>.log`` (:mod:`arkserve.runtimes.logpump`: no
process per replica, nothing lost while the pump or the reconciler restarts). start, stop and list make
sure a pump runs. Adoption: ``<data_dir>/replicas/<ark-name>.json`` records pid, port, revision, start
time, the kernel's process start time (guards against pid reuse) and the spool, so a new instance in a
new process lists, inspects and stops what an old one started. Exit codes of processes this process did
not spawn are unknown (None). A sandbox is one platform process beside the app: bwrap's monitor is dropped
once the app runs (:mod:`arkserve.runtimes.detach`; the state file then records the sandbox's init and the
app, whose pid and start time are the replica's liveness). Stopping is
:func:`arkserve.runtimes.procgroup.stop_group`; stops of different replicas run in parallel (one call per thread).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from arkserve.domain.services import app_dir_refused
from arkserve.errors import PermanentError, TemporaryError
from arkserve.logs import DEFAULT_MAX_BYTES, log_dir_for
from arkserve.runtimes import sandbox, spool
from arkserve.runtimes.base import (
    ReplicaInfo,
    ReplicaPhase,
    ReplicaSpec,
    checked_object_name,
    object_name,
    parse_object_name,
)
from arkserve.runtimes.detach import Detacher, Launched, passed_on, running_pid
from arkserve.runtimes.procgroup import CHILDREN, adopt_child, awaited, group_alive, proc_stat, reap, stop_group

# The platform's environment a replica inherits: what programs need to run, nothing of the platform's own
# (its ARKSERVE_* settings, PGPASSWORD, a cloud token). A service adds its own with its spec's env.
KEPT_ENV = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "LD_LIBRARY_PATH"})  # HOME: /tmp in a sandbox


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
    spool: str = ""  # its output's spool (logpump), "" for replicas started before the shared pump
    sandboxed: bool = False  # in a bubblewrap PID namespace (procgroup.stop_group's shortcut)
    init_pid: int = 0  # the sandbox's init once its bwrap monitor (``pid``, the group's id) was dropped (detach)
    init_start: int = 0
    app_pid: int = 0  # ... and the app the init runs (the replica's liveness from then on)
    app_start: int = 0


def _host_gpus() -> int:
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


class LocalRuntime:
    name = "local"

    def __init__(self, data_dir: Path, *, gpu_count: int | None = None,
                 log_max_bytes: int = DEFAULT_MAX_BYTES, base_env: Mapping[str, str] | None = None,
                 replica_user: str = "nobody", sandbox_paths: tuple[str, ...] = (), drop_monitor: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.policy = sandbox.policy_for(self.data_dir, replica_user=replica_user, extra_paths=sandbox_paths)
        self.log_dir = log_dir_for(self.data_dir)
        self.pump_dir = spool.pump_dir_for(self.data_dir)
        self.state_dir = self.data_dir / "replicas"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.gpu_count = _host_gpus() if gpu_count is None else gpu_count
        self.log_max_bytes = log_max_bytes
        env = os.environ if base_env is None else base_env
        # only what a program needs to run: the platform's own settings and secrets (PGPASSWORD, a cloud
        # token, ARKSERVE_*) are none of a replica's business
        self._base_env = {k: v for k, v in env.items() if k in KEPT_ENV or k.startswith("LC_")}
        self._lock = threading.Lock()
        self._gpu_next = 0
        self._ports: dict[str, int] | None = None  # state file name -> port, for _free_port (None: not read yet)
        self._detacher = Detacher(self._record_init)
        self.drop_monitor = drop_monitor  # False: sandboxes keep bwrap's monitor (two processes; benchmarks)

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
        if self._ports is not None:  # copied, not changed in place: _free_port reads it without the lock
            self._ports = {**self._ports, path.name: state.port}

    def _alive(self, st: _State) -> bool:
        if st.init_pid and st.pid not in CHILDREN:  # its monitor dropped (or not ours): the app is its life
            if running_pid(st.app_pid, st.app_start):
                return True  # ... and it is still ending until its init has passed the exit code on, or exited
            return running_pid(st.init_pid, st.init_start) and passed_on(st.init_pid) == 0
        if running_pid(st.pid, st.proc_start):
            return True
        now = self._load(self._path(st.service, st.replica))  # its monitor may just have been dropped
        return now is not None and now.pid == st.pid and now.init_pid != 0 and running_pid(now.app_pid,
                                                                                             now.app_start)

    @staticmethod
    def _reaped(st: _State) -> int | None:
        """The exit code, once the sandbox's init (taken over from its monitor) or the monitor is reaped."""
        rc = reap(st.init_pid) if st.init_pid else None
        return reap(st.pid) if rc is None else rc

    def _record_init(self, key: str, monitor: int, launched: Launched) -> bool:
        """The Detacher's callback: note the sandbox's init and app before its monitor goes (False: not ours)."""
        with self._lock:
            current = self._load(self.state_dir / key)
            if current is None or current.pid != monitor:
                return False
            init, init_start, app, app_start = launched
            self._save(replace(current, init_pid=init, init_start=init_start, app_pid=app, app_start=app_start))
        return True

    def _refresh(self, st: _State) -> _State:
        """Record the exit code once the process is seen gone (known only for our own children)."""
        if st.exit_code is not None:
            return st
        rc = self._reaped(st)
        if rc is None and self._alive(st):
            return st
        if rc is None and st.init_pid and running_pid(st.init_pid, st.init_start):
            count = passed_on(st.init_pid)  # the app ended, children it left run on in the sandbox
            rc = count - 1 if count else None
        if rc is not None:
            st = replace(st, exit_code=rc)
            with self._lock:  # a stop() may have removed the state meanwhile: never bring it back
                current = self._load(self._path(st.service, st.replica))
                if current is not None and current.pid == st.pid:
                    self._save(st)
        return st

    def _info(self, st: _State) -> ReplicaInfo:
        # a process of ours that ended is still "running" until its exit code is reaped (a moment later)
        running = st.exit_code is None and (self._alive(st) or awaited(st.pid, st.init_pid))
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
        refused = app_dir_refused(os.path.realpath(app_dir))
        if refused:
            raise PermanentError(f"image directory: {refused}", code="ValidationFailed")
        if sandbox.inside_data_dir(app_dir, self.data_dir):
            raise PermanentError(f'image directory "{app_dir}" overlaps the platform\'s data directory; '
                                 "use a directory of its own", code="ValidationFailed")
        if not spec.command.strip():
            raise PermanentError("the local runtime needs a command", code="ValidationFailed")
        for m in spec.mounts:
            if not Path(m.source).exists():
                raise PermanentError(f'mount source "{m.source}" does not exist', code="ValidationFailed")
        old = self._load(self._path(spec.service, spec.replica))
        existing = None if old is None else self._info(self._refresh(old))
        if existing is not None and existing.phase is ReplicaPhase.RUNNING:
            return existing
        if existing is not None:
            self._path(spec.service, spec.replica).unlink(missing_ok=True)
        with self._lock:
            # exactly the GPUs placement assigned (arkserve/capacity); without a placement, the old round robin
            gpus = tuple(spec.gpu_indices) or self._assign_gpus(spec.gpus)
            port = self._free_port()
            replica_env = {**spec.env, "PORT": str(port), "ARK_PORT": str(port), "ARK_SERVICE": spec.service,
                           "ARK_REPLICA": spec.replica, "ARK_REVISION": spec.revision,
                           "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
            confined = not sandbox.unavailable()  # else command_line refuses, or runs a trusted (admin) replica
            if spec.mounts:
                replica_env["ARK_MODEL_DIR"] = (spec.mounts[0].target if confined
                                                else str(Path(spec.mounts[0].source).resolve()))
            # network-disk folders are opened here by descriptors and bwrap binds those (--bind-fd): never a path
            # looked up again after the check, which a replica could have swapped for a link meanwhile. The
            # replica's environment reaches its shell through env_fd, never bwrap's or setpriv's (root) own.
            with sandbox.opened_mounts(spec.mounts) as fds, sandbox.env_script(replica_env, confined) as env_fd:
                argv = sandbox.command_line(self.policy, spec, app_dir, fds, gpus, env_fd)
                env = dict(self._base_env) if env_fd is not None else {**self._base_env, **replica_env}
                stem, out = spool.open_spool(self.pump_dir, spec.service, spec.replica, old.spool if old else "")
                try:
                    proc = subprocess.Popen(argv, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=out, start_new_session=True,
                                            pass_fds=(*fds.values(), env_fd) if env_fd is not None else ())
                except OSError as exc:
                    spool.close_spool(self.pump_dir, stem)
                    raise TemporaryError(f"cannot start {spec.command!r}: {exc}") from exc
                finally:
                    os.close(out)
            adopt_child(proc)
            ps = proc_stat(proc.pid)
            st = _State(spec.service, spec.replica, spec.revision, proc.pid, port, time.time(),
                        ps[1] if ps else 0, spool=stem, sandboxed=argv[0] != "/bin/sh")
            self._save(st)
        if st.sandboxed and self.drop_monitor:
            self._detacher.add(self._path(spec.service, spec.replica).name, proc)
        self._ensure_pump()
        return self._info(self._refresh(st))

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        path = self._path(service, replica)
        st = self._load(path)
        if st is None:
            return
        ps = proc_stat(st.pid)
        # Signal the group only while it is provably ours: the leader with the recorded start time, or
        # orphaned members of a group whose leader is gone (Linux keeps that pgid unused); for a sandbox
        # whose monitor was dropped, its init with the recorded start time (the namespace ends with it).
        if st.init_pid:
            if running_pid(st.init_pid, st.init_start):
                stop_group(st.pid, grace_s, sandboxed=True, root=st.init_pid)
            reap(st.init_pid)
        elif (ps is None or ps[1] == st.proc_start) and group_alive(st.pid):
            stop_group(st.pid, grace_s, sandboxed=st.sandboxed)
        reap(st.pid)
        with self._lock:  # a start() of the same replica id may have replaced the state meanwhile: keep that
            current = self._load(path)
            if current is not None and current.pid == st.pid:
                path.unlink(missing_ok=True)
                if self._ports is not None:
                    self._ports = {k: v for k, v in self._ports.items() if k != path.name}
        if current is not None and current.pid == st.pid and current.init_pid and not st.init_pid:  # dropped meanwhile
            reap(current.init_pid)
        spool.close_spool(self.pump_dir, st.spool)  # its processes are gone: the pump takes the rest
        self._ensure_pump(strict=False)

    def list(self) -> list[ReplicaInfo]:
        out, ports = [], {}
        for path in sorted(self.state_dir.glob("*.json")):
            if parse_object_name(path.stem) is None:
                continue
            st = self._load(path)
            if st is not None:
                ports[path.name] = st.port
                out.append(self._info(self._refresh(st)))
        self._ports = ports
        if out:
            self._ensure_pump(strict=False)  # a pump that died comes back within a pass (the spools kept it all)
        return out

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        st = self._load(self._path(service, replica))
        return None if st is None else self._info(self._refresh(st))

    def close(self) -> None:
        """Nothing to release: replicas and the log pump run on without this object."""

    # -- helpers -----------------------------------------------------------------------------
    def _assign_gpus(self, want: int) -> tuple[int, ...]:
        if want <= 0:
            return ()
        if want > self.gpu_count:
            raise TemporaryError(f"insufficient GPUs: want {want}, have {self.gpu_count}",
                                 code="InsufficientCapacity")
        ids = tuple((self._gpu_next + i) % self.gpu_count for i in range(want))
        self._gpu_next = (self._gpu_next + want) % self.gpu_count
        return ids

    def _free_port(self) -> int:
        if self._ports is None:
            self.list()
        taken = set((self._ports or {}).values())
        for _ in range(50):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port: int = s.getsockname()[1]
            if port not in taken:
                return port
        raise TemporaryError("no free loopback port")

    def _ensure_pump(self, strict: bool = True) -> None:
        """Start the log pump unless one runs. Not strict (stop, list): the spools keep the output till a retry."""
        try:
            spool.ensure_pump(self.pump_dir, self.log_dir, self.log_max_bytes, self._base_env.get("PATH", ""))
        except (OSError, subprocess.CalledProcessError) as exc:
            if strict:
                raise TemporaryError(f"cannot start the log pump: {exc}") from exc
