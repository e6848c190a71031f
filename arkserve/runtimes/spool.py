"""Spool files of the local runtime's replicas: opening and closing them (the runtime's side), starting the
one log pump of a data directory when none runs, and the byte-level helpers the pump reads them with.

Layout: ``<data_dir>/logpump/spool/<service>.<replica>.<seq>.out`` (a replica's output, ``O_APPEND``), with
the markers ``<stem>.closed`` (written by the runtime once the run's processes are gone) and ``<stem>.begun``
(written by the pump when it took up the run); ``<data_dir>/logpump/lock`` is held by the running pump.
A service's deletion discards its spools (:func:`discard_service`) before its name is free again.
Why and how the pump uses them: :mod:`arkserve.runtimes.logpump`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from arkserve.runtimes.procgroup import SUBREAPER_LOCK

OUT, CLOSED, BEGUN = ".out", ".closed", ".begun"
MAX_LINE = 65536
READ_CHUNK = 1 << 20
BLOCK = 4096
_PUNCH_HOLE, _KEEP_SIZE = 0x02, 0x01
LIBC = ctypes.CDLL(None, use_errno=True)


def pump_dir_for(data_dir: Path) -> Path:
    return data_dir / "logpump"


def spool_dir(pump_dir: Path) -> Path:
    return pump_dir / "spool"


# ------------------------------------------------------------------------------------------ the runtime's side

def open_spool(pump_dir: Path, service: str, replica: str, previous: str = "") -> tuple[str, int]:
    """Start a new run's spool: (its stem, an O_APPEND descriptor for the replica's stdout and stderr).

    The previous run's spool (``previous``, when the replica id runs again) is marked closed first; the pump
    finishes a replica's older spools before it starts on a newer one."""
    d = spool_dir(pump_dir)
    d.mkdir(parents=True, exist_ok=True)
    close_spool(pump_dir, previous)
    stem = f"{service}.{replica}.{time.time_ns():020d}"
    fd = os.open(d / f"{stem}{OUT}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
    return stem, fd


def close_spool(pump_dir: Path, stem: str) -> None:
    """The run is over (its processes are gone): the pump drains the rest, partial last line included."""
    if stem and (spool_dir(pump_dir) / f"{stem}{OUT}").exists():
        (spool_dir(pump_dir) / f"{stem}{CLOSED}").touch()


def discard_service(pump_dir: Path, service: str) -> None:
    """A deleted service's spools and markers go, read or not (call it while its name is still taken).

    Its logs go with it, and a new service may take the name at once: a pump that is stopped, dead or behind
    must never write that output into the new service's ``logs/<service>/``. A pump holding a spool open
    finds it unlinked (no link left) and drops it (:mod:`arkserve.runtimes.logpump`). No wait on a pump."""
    d = spool_dir(pump_dir)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return
    for name in sorted(names, key=lambda n: not n.endswith(OUT)):  # the output first, then its markers
        if name.startswith(f"{service}."):  # a service name has no dot: exactly this service's
            (d / name).unlink(missing_ok=True)


def discarded(fd: int) -> bool:
    """Whether the spool open at ``fd`` was discarded (its service deleted): it has no name left."""
    return os.fstat(fd).st_nlink == 0


def try_lock(pump_dir: Path) -> int | None:
    """A descriptor holding the pump lock of ``pump_dir``, or None when a pump holds it."""
    fd = os.open(pump_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def ensure_pump(pump_dir: Path, log_dir: Path, max_bytes: int, path_env: str) -> bool:
    """Start a pump for ``pump_dir`` unless one runs; True when one was started.

    The lock is taken here and handed to the new pump as an inherited descriptor, so there is no moment in
    which a second caller could find it free and start a second pump."""
    try:
        fd = try_lock(pump_dir)  # the usual case: a pump holds it (no directory to make: 1-2 ms each here)
    except FileNotFoundError:
        spool_dir(pump_dir).mkdir(parents=True, exist_ok=True)
        fd = try_lock(pump_dir)
    if fd is None:
        return False
    spool_dir(pump_dir).mkdir(parents=True, exist_ok=True)
    try:
        pkg_root = str(Path(__file__).resolve().parents[2])
        env = {"PATH": path_env or "/usr/bin:/bin", "PYTHONPATH": pkg_root}
        # detached through an exiting shell, so init reaps it (not us), in a session of its own
        script = '"$0" -m arkserve.runtimes.logpump "$1" "$2" "$3" "$4" </dev/null >>"$1/pump.err" 2>&1 &'
        with SUBREAPER_LOCK:  # orphaned on purpose: never while this process adopts orphans (runtimes/detach.py)
            subprocess.run(["/bin/sh", "-c", script, sys.executable, str(pump_dir), str(log_dir), str(max_bytes),
                            str(fd)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env, start_new_session=True, check=True, pass_fds=(fd,))
    finally:
        os.close(fd)  # the pump's inherited copy keeps the lock
    return True


# ------------------------------------------------------------------------------------------ reading spools

def punch(fd: int, start: int, end: int) -> bool:
    """Free [start, end) of the spool (reads as zeros after); False where the filesystem cannot."""
    if end <= start:
        return True
    if LIBC.fallocate(fd, _PUNCH_HOLE | _KEEP_SIZE, ctypes.c_long(start), ctypes.c_long(end - start)) == 0:
        return True
    if ctypes.get_errno() not in (errno.EOPNOTSUPP, errno.ENOSYS):
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    for pos in range(start, end, READ_CHUNK):
        os.pwrite(fd, bytes(min(READ_CHUNK, end - pos)), pos)
    return False


def resume_offset(fd: int) -> int:
    """Where a spool's unconsumed data starts: its first non-zero byte (everything before was punched)."""
    size = os.fstat(fd).st_size
    try:
        pos = os.lseek(fd, 0, os.SEEK_DATA)
    except OSError:  # ENXIO: nothing but a hole
        return size
    while pos < size:
        chunk = os.pread(fd, min(READ_CHUNK, size - pos), pos)
        stripped = chunk.lstrip(b"\0")
        if stripped:
            return pos + len(chunk) - len(stripped)
        pos += len(chunk)
    return size


def split_lines(data: bytes, final: bool) -> tuple[list[bytes], int]:
    """Complete lines of ``data`` (pieces of at most MAX_LINE bytes) and how many bytes they use.

    ``final``: the run is over, so a trailing partial line counts too."""
    end = len(data) if final else data.rfind(b"\n") + 1
    if end == 0 and len(data) >= MAX_LINE:
        end = len(data) - len(data) % MAX_LINE
    if end == 0:
        return [], 0
    parts = data[:end].split(b"\n")
    if data[end - 1] == 0x0A:
        parts.pop()  # the empty piece after the last newline
    out: list[bytes] = []
    for line in parts:
        out += [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]
    return out, end
