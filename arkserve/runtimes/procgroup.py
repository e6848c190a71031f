"""Process groups of the local runtime: liveness guarded against pid reuse, reaping, and stopping a group.

A replica is a process group whose leader the runtime spawned (``start_new_session``). Its exit code is known
only to the process that spawned it (``CHILDREN``, reaped here once), or, for a sandbox whose bwrap monitor
(the leader) was dropped, to the process that took its init over (``INITS``, :mod:`arkserve.runtimes.detach`).
Stopping sends SIGTERM to the group, waits up to the grace period, then SIGKILL, and returns as soon as the
group is gone.

"Gone" counts zombies: a process that has exited but that nobody has reaped yet holds no resources and
runs no code, yet keeps the group alive for ``kill(-pgid, 0)``. Reparented orphans are reaped by the host's
init, and some inits (container and microVM agents) reap only every second or two; waiting for that made
each stop take about two seconds. So the group's members are listed when the stop begins (the leader and
its descendants, through ``/proc/<pid>/task/<tid>/children``) and the stop is done once every one of them
is dead or a zombie and, for a replica outside a sandbox, no other live process is left in the group (a
``/proc`` scan, needed only there). A sandboxed replica lives in a PID namespace whose init is one of
those members; the kernel empties the namespace before that init can become a zombie, so nothing else
can be left.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

# Children spawned by this process, shared by every LocalRuntime in it so exit codes are reaped once.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
CHILDREN_LOCK = threading.Lock()
# Sandbox inits this process took over from their bwrap monitors (runtimes/detach.py): our children too.
INITS: set[int] = set()
# Held while this process is a child subreaper (detach.take_over) and while it lets a process orphan on purpose
# (spool.ensure_pump): an orphan made in that window would become a child nobody reaps.
SUBREAPER_LOCK = threading.Lock()


@atexit.register
def _leave_children_running() -> None:
    """Replicas outlive this process on purpose: a restarted reconciler adopts them. Forget them without
    Popen's "subprocess is still running" warning at interpreter exit."""
    with CHILDREN_LOCK:
        for proc in CHILDREN.values():
            if proc.poll() is None:
                proc.returncode = 0  # not ours to wait for any more
        CHILDREN.clear()


def adopt_child(proc: subprocess.Popen[bytes]) -> None:
    with CHILDREN_LOCK:
        CHILDREN[proc.pid] = proc


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def reap(pid: int) -> int | None:
    """Exit code of a child of this process once it ended (128+N for signal N), else None."""
    with CHILDREN_LOCK:
        proc = CHILDREN.get(pid)
        rc = proc.poll() if proc is not None else None
        if rc is not None:
            del CHILDREN[pid]
        elif pid in INITS:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                INITS.discard(pid)
                return None
            if done == 0:
                return None
            INITS.discard(pid)
            rc = os.waitstatus_to_exitcode(status)
    return None if rc is None else (128 - rc if rc < 0 else rc)


def awaited(pid: int, init: int = 0) -> bool:
    """Whether this process will reap an exit code for a replica: its bwrap monitor (or leader) is our child,
    or its sandbox's init was taken over (:mod:`arkserve.runtimes.detach`; the lock waits out a take-over)."""
    with CHILDREN_LOCK:
        return pid in CHILDREN or (init != 0 and init in INITS)


def group_alive(pgid: int, root: int = 0) -> bool:
    reap(pgid)
    if root:
        reap(root)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def members(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of ``pid`` and its live descendants."""
    out: list[tuple[int, int]] = []
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        st = proc_stat(p)
        if st is None:
            continue
        out.append((p, st[1]))
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                frontier += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
            except OSError:
                continue
    return out


def _all_ended(known: list[tuple[int, int]]) -> bool:
    for pid, start in known:
        st = proc_stat(pid)
        if st is not None and st[1] == start and st[0] not in ("Z", "X"):
            return False
    return True


def _live_in_group(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is alive and not a zombie (a scan of /proc)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_group(pgid: int, grace_s: float, *, sandboxed: bool, root: int = 0) -> None:
    """SIGTERM the group, wait up to ``grace_s``, SIGKILL, wait up to 5 s; return once it is gone.

    ``root``: the process whose descendants are the group (default: the leader ``pgid``); a sandbox whose
    bwrap monitor (the leader) was dropped names its init."""
    root = root or pgid
    known = members(root)
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        pause = 0.005
        while True:
            if not group_alive(pgid, root):
                return
            if len(known) >= 2 and _all_ended(known) and (sandboxed or not _live_in_group(pgid)):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 0.05)
