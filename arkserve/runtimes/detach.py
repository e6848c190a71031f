"""Dropping bubblewrap's monitor process once a sandboxed replica runs: one platform process per replica.

``bwrap --unshare-pid`` makes two processes besides the app: the *monitor*, outside the sandbox, which only
waits to pass the app's exit code to whoever spawned bwrap, and the sandbox's *init* (PID 1 of its PID
namespace), which reaps the app's orphans, ignores SIGTERM as every namespace init without a handler does
(so a SIGTERM to the process group reaches the app, not it) and exits with the app's exit code once the app
and its children are gone (the kernel then empties the namespace). The monitor holds nothing the sandbox
needs once the app has been launched (bwrap's child has read the go-ahead and set up every mount); it costs
about 1.9 MB of RSS per replica.

So this module takes the monitor's place. A :class:`Detacher` thread watches the monitors started by this
process; once the init has forked the app (the init has a child: setup is over), it records the init's and
the app's pid and start time (through the runtime's callback, before anything else, so the replica is never
seen without a live process), stops the monitor (SIGSTOP: from then on it can neither reap the init nor read
the app's exit code) and, if the app still runs, SIGKILLs it while this process is a child subreaper
(``PR_SET_CHILD_SUBREAPER``, on only for that moment, under a lock): the init is reparented to this process
and its exit status (the app's, 128+N for a signal) is reaped here (:func:`arkserve.runtimes.procgroup.reap`)
as the monitor's would have been. An app that ended before keeps its monitor, which exits with its code.
The process group is unchanged (its id is the monitor's pid, which Linux keeps unused while the group has
members), so a stop signals it as before. After a restart of the platform the init belongs to the host's
init, like any adopted replica (exit code unknown).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from arkserve.runtimes import procgroup

_PR_SET_CHILD_SUBREAPER = 36
GIVE_UP_S = 60.0  # a sandbox still in setup after this long keeps its monitor

Launched = tuple[int, int, int, int]  # init pid, its start time, app pid, its start time
# (key, monitor pid, launched) -> False when the replica is no longer this runtime's (stopped meanwhile)
Record = Callable[[str, int, Launched], bool]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def launched_init(monitor: int) -> Launched | None:
    """(init pid, start time, app pid, start time) once the sandbox's init has forked the app, else None."""
    inits = children(monitor)
    apps = children(inits[0]) if len(inits) == 1 else []
    if len(apps) != 1:
        return None
    init, app = procgroup.proc_stat(inits[0]), procgroup.proc_stat(apps[0])
    if init is None or app is None or init[0] in ("Z", "X"):
        return None
    return inits[0], init[1], apps[0], app[1]


def passed_on(init: int) -> int | None:
    """What a sandbox's init has passed on of its app's end: bwrap's init adds exit code + 1 to an eventfd once
    the app ended (for the monitor, which nobody reads now); ``/proc/<init>/fdinfo`` shows the count. 0: not
    yet (the app runs, or ended a moment ago); None: not readable here."""
    fd_dir = Path(f"/proc/{init}/fd")
    try:
        for fd in os.listdir(fd_dir):
            if os.readlink(fd_dir / fd) == "anon_inode:[eventfd]":
                for line in Path(f"/proc/{init}/fdinfo/{fd}").read_text().splitlines():
                    if line.startswith("eventfd-count:"):
                        return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _stopped(pid: int, within_s: float = 0.2) -> bool:
    """Wait for a SIGSTOPped process to be stopped; False when it ended or did not stop in time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        st = procgroup.proc_stat(pid)
        if st is None or st[0] in ("Z", "X"):
            return False
        if st[0] in ("T", "t"):
            return True
        time.sleep(0.0005)
    return False


def take_over(proc: subprocess.Popen[bytes], launched: Launched) -> bool:
    """SIGKILL the monitor ``proc`` with this process as subreaper, so that the init becomes our child.

    The monitor is stopped first, and dropped only if the app still runs then: a stopped monitor cannot reap
    the init or read the app's exit code, so whatever the app does from then on, its code stays with the init
    (its eventfd, then its exit status, reaped here). An app that ended already keeps its monitor, which is
    about to exit with the code (False)."""
    init, _, app, app_start = launched
    with procgroup.SUBREAPER_LOCK, procgroup.CHILDREN_LOCK:
        if proc.poll() is not None:  # the sandbox ended meanwhile: its exit code is the monitor's
            return False
        proc.send_signal(signal.SIGSTOP)
        if not _stopped(proc.pid) or not running_pid(app, app_start):
            proc.send_signal(signal.SIGCONT)
            return False
        _subreaper(True)  # may fail: then nothing has changed (the finally lets the monitor go on)
        try:
            procgroup.CHILDREN.pop(proc.pid, None)
            proc.send_signal(signal.SIGKILL)
            proc.wait()  # once reaped, its children have been reparented (to us)
        finally:
            _subreaper(False)
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                procgroup.CHILDREN[proc.pid] = proc
        procgroup.INITS.add(init)
    return True


class Detacher:
    """Takes over the sandboxes this process starts from their bwrap monitors (one thread per runtime)."""

    def __init__(self, record: Record, poll_s: float = 0.002) -> None:
        self.record, self.poll_s = record, poll_s
        self._pending: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, key: str, proc: subprocess.Popen[bytes]) -> None:
        with self._cond:
            self._pending[key] = (proc, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ark-detach", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = None  # idle: the next add starts a new thread
                    return
                items = list(self._pending.items())
            done = [(key, proc) for key, (proc, since) in items if self._step(key, proc, since)]
            with self._cond:
                for key, proc in done:
                    if key in self._pending and self._pending[key][0] is proc:  # not a newer start of it
                        del self._pending[key]
            time.sleep(self.poll_s)

    def _step(self, key: str, proc: subprocess.Popen[bytes], since: float) -> bool:
        """True when ``proc`` needs no more looking at (taken over, ended, or given up on)."""
        if proc.poll() is not None or time.monotonic() - since > GIVE_UP_S:
            return True
        init = launched_init(proc.pid)
        if init is None:
            return False
        try:
            if self.record(key, proc.pid, init):
                take_over(proc, init)
        except OSError:
            pass  # the monitor stays: the replica runs as before, with two bwrap processes
        return True


def running_pid(pid: int, start: int) -> bool:
    st = procgroup.proc_stat(pid)
    return st is not None and st[1] == start and st[0] not in ("Z", "X")

