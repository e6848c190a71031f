"""The local runtime's log capture: replicas append to spool files; ONE pump process per data directory
timestamps every replica's output into its log (``arkserve.logs`` format) and rotates it.

Why spool files and not pipes: whoever holds a pipe's read end must outlive every replica, or the replica
writes into a dead pipe (SIGPIPE, lost lines). A file has no read end. The runtime opens
``<data_dir>/logpump/spool/<service>.<replica>.<seq>.out`` (``O_APPEND``) and hands that descriptor to the
replica as stdout and stderr; it goes through bubblewrap and the uid drop like any inherited descriptor,
and the sandbox still sees nothing of the data directory. The kernel keeps every byte the replica wrote,
whether or not a pump is running, so nothing is lost while the pump restarts, crashes or is upgraded.

The pump (``python -m arkserve.runtimes.logpump PUMP_DIR LOG_DIR MAX_BYTES [LOCK_FD]``) holds an ``flock``
on ``<pump_dir>/lock``: one pump per data directory. The runtime tries that lock on each start, stop and
list; when it gets it, it starts a pump (detached, so it outlives the reconciler) and hands the lock over
as an inherited descriptor. It wakes on inotify
(and at least every second), reads each spool from its offset, writes complete lines to
``<log_dir>/<service>/<replica>.log`` (a line longer than 64 KiB is split, as before), and then frees what it
consumed by punching a hole (``fallocate(PUNCH_HOLE)``) into the spool: disk use stays at the unread
part while the replica runs. The punched range reads as zeros, so the spool describes its own progress:
a restarted pump resumes at the first non-zero byte (``SEEK_DATA``, then past zeros). The only state the
pump keeps in memory is caches. Lines are written before the hole is punched, so a pump killed between the
two writes that batch again on restart (at least once; never lost). Where the filesystem cannot punch
holes the consumed range is overwritten with zeros instead (same resume rule, no space given back).

A run of a replica: the runtime creates the spool (a new ``seq``) and marks older spools of the same
replica closed (``<stem>.closed``). The pump finishes a replica's older spools first, then moves the old
log aside (``<replica>.log.1``, the ``previous`` log) and marks the new spool begun (``<stem>.begun``)
before its first line. When the runtime has stopped the replica (its process group is gone) it marks the
spool closed; the pump then takes the trailing partial line too and removes the spool and its markers.
A pump with no spools left for ``idle_exit_s`` exits (the next start brings one back).
A deleted service's spools are unlinked before its name is free (:func:`~arkserve.runtimes.spool.discard_service`):
a spool the pump holds open with no name left is dropped, its writer closed, and checked again after a log file is
opened and before each batch is written, so a pump stopped or behind during the deletion never writes the old
output into a new service of the same name.
The runtime's side (opening and closing spools, starting a pump) and the byte-level helpers are in
:mod:`arkserve.runtimes.spool`.

Lines are stamped when the pump reads them (within milliseconds while a pump runs; lines written while
none ran carry the time the next pump read them). NUL bytes at the very start of a line written right
after a pump restart are taken for the punched range and skipped.
"""

from __future__ import annotations

import os
import resource
import select
import signal
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from arkserve.logs import DEFAULT_MAX_BYTES, LogWriter, log_path, rotate
from arkserve.runtimes.spool import (
    BEGUN,
    BLOCK,
    CLOSED,
    LIBC,
    OUT,
    READ_CHUNK,
    discarded,
    punch,
    resume_offset,
    split_lines,
    spool_dir,
    try_lock,
)

_IN_MASK = 0x2 | 0x8 | 0x80 | 0x100 | 0x400 | 0x800  # modify, close-write, moved-to, create, delete/move self
_IN_Q_OVERFLOW = 0x4000


class _Inotify:
    """Wake-ups for writes into the spool directory (a 1 s poll where inotify is unavailable)."""

    def __init__(self, path: Path) -> None:
        self.fd = -1
        fd = int(LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd >= 0 and LIBC.inotify_add_watch(fd, os.fsencode(path), _IN_MASK) >= 0:
            self.fd = fd
        elif fd >= 0:
            os.close(fd)

    def wait(self, timeout: float) -> set[str] | None:
        """Names of spool files that changed; None for "look at all of them" (timeout, overflow)."""
        if self.fd < 0:
            time.sleep(min(timeout, 0.1))
            return None
        if not select.select([self.fd], [], [], timeout)[0]:
            return None
        time.sleep(0.005)  # let a burst of writes collect into one pass
        names: set[str] = set()
        try:
            while buf := os.read(self.fd, 65536):
                pos = 0
                while pos + 16 <= len(buf):
                    _wd, mask, _cookie, length = struct.unpack_from("iIII", buf, pos)
                    if mask & _IN_Q_OVERFLOW:
                        return None
                    names.add(buf[pos + 16: pos + 16 + length].rstrip(b"\0").decode(errors="replace"))
                    pos += 16 + length
        except BlockingIOError:
            pass
        return names


@dataclass
class _Spool:
    stem: str
    service: str
    replica: str
    fd: int
    offset: int
    punched: int


class Pump:
    def __init__(self, pump_dir: Path, log_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 idle_exit_s: float = 5.0, lock_fd: int | None = None) -> None:
        self.dir, self.spools_dir, self.log_dir = pump_dir, spool_dir(pump_dir), log_dir
        self.max_bytes, self.idle_exit_s = max_bytes, idle_exit_s
        self.open: dict[str, _Spool] = {}
        self.writers: dict[tuple[str, str], LogWriter] = {}
        self.stopping = False
        self.warned_no_punch = False
        self.lock_fd = lock_fd  # the lock, already held (taken by ensure_pump)

    def run(self) -> int:
        if not self.spools_dir.is_dir():
            return 0  # the runtime makes it before starting a pump; gone means the data directory went away
        lock = self.lock_fd if self.lock_fd is not None else try_lock(self.dir)
        if lock is None:
            return 0  # another pump serves this directory
        os.set_inheritable(lock, False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 1 << 16)), hard))
        watch = _Inotify(self.spools_dir)
        changed: set[str] | None = None
        idle_since = time.monotonic()
        while not self.stopping:
            try:
                names = os.listdir(self.spools_dir)
            except FileNotFoundError:
                return 0  # the data directory went away
            if self.step(names, changed):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= self.idle_exit_s:
                os.close(lock)  # let go, then look once more: a spool created meanwhile keeps us (or its pump)
                if not any(n.endswith(OUT) for n in os.listdir(self.spools_dir)):
                    return 0
                if (lock := try_lock(self.dir)) is None:
                    return 0  # a runtime started another pump meanwhile
                idle_since = time.monotonic()
            changed = watch.wait(1.0)
        return 0

    def step(self, names: list[str], changed: set[str] | None) -> bool:
        """One pass over the spools (those in ``changed`` if given, plus new and closed ones); True while any exist."""
        present = set(names)
        stems = sorted(n[: -len(OUT)] for n in names if n.endswith(OUT))
        for n in names:  # markers of spools already removed (a pump stopped between the unlinks)
            stem, ext = os.path.splitext(n)
            if ext in (CLOSED, BEGUN) and f"{stem}{OUT}" not in present:
                (self.spools_dir / n).unlink(missing_ok=True)
        for stem in [s for s in self.open if f"{s}{OUT}" not in present]:  # discarded: its service was deleted
            self._drop(stem)
        earlier: set[tuple[str, str]] = set()
        for stem in stems:
            service, replica, _ = stem.split(".", 2)
            key = (service, replica)
            if key in earlier:
                continue  # an older run of this replica goes first
            closed = f"{stem}{CLOSED}" in present
            if stem in self.open and changed is not None and not closed and f"{stem}{OUT}" not in changed:
                continue
            try:
                if not self._drain(stem, key, begun=f"{stem}{BEGUN}" in present, closed=closed):
                    earlier.add(key)
            except OSError as exc:
                earlier.add(key)
                print(f"logpump: {stem}: {exc}", file=sys.stderr, flush=True)
        return bool(stems)

    def _spool(self, stem: str, key: tuple[str, str], begun: bool) -> _Spool:
        sp = self.open.get(stem)
        if sp is None:
            fd = os.open(self.spools_dir / f"{stem}{OUT}", os.O_RDWR | os.O_CLOEXEC)
            offset = resume_offset(fd) if begun else 0
            sp = self.open[stem] = _Spool(stem, key[0], key[1], fd, offset, offset)
        if not begun and not discarded(sp.fd):  # a new run: the previous run's log becomes the `previous` log
            self._writer_done(key)
            rotate(log_path(self.log_dir, *key))
            (self.spools_dir / f"{stem}{BEGUN}").touch()
        return sp

    def _drain(self, stem: str, key: tuple[str, str], *, begun: bool, closed: bool) -> bool:
        """Take what the spool holds into the log; True once a closed spool is finished and removed, or dropped
        (discarded: its service was deleted, and ``logs/<service>/`` may already be a new service's)."""
        sp = self._spool(stem, key, begun)
        while True:
            if discarded(sp.fd):
                self._drop(stem)
                return True
            size = os.fstat(sp.fd).st_size
            if size < sp.offset:  # the replica truncated its own output
                sp.offset = sp.punched = resume_offset(sp.fd)
            data = os.pread(sp.fd, min(READ_CHUNK, size - sp.offset), sp.offset)
            lines, used = split_lines(data, final=closed and sp.offset + len(data) >= size)
            if lines:
                writer = self.writers.get(key)
                if writer is None:
                    path = log_path(self.log_dir, *key)
                    made = not path.exists()
                    writer = self.writers[key] = LogWriter(path, key[1], self.max_bytes)
                    # discarded while the file was opened (made the folder again, after the deletion took it)
                    if discarded(sp.fd) and made and path.exists() and path.stat().st_size == 0:
                        path.unlink(missing_ok=True)
                if discarded(sp.fd):  # checked after the writer is open, so this writer's file is the
                    self._drop(stem)  # deleted service's (in the folder the deletion took), or none
                    return True
                writer.write_many([raw.decode("utf-8", "replace") for raw in lines])
            sp.offset += used
            # from the block the last punch ended in: a block is freed only by a punch that covers all of it. Only
            # after new lines: a punch is a write, and inotify would wake us for it again
            if used and not punch(sp.fd, sp.punched - sp.punched % BLOCK, sp.offset) and not self.warned_no_punch:
                self.warned_no_punch = True
                print("logpump: this filesystem cannot punch holes; spools keep their size until their replica "
                      "stops", file=sys.stderr, flush=True)
            sp.punched = sp.offset
            if used == 0 or sp.offset >= size:
                break
        if closed and sp.offset >= os.fstat(sp.fd).st_size:
            os.close(sp.fd)
            del self.open[stem]
            self._writer_done(key)
            for ext in (OUT, CLOSED, BEGUN):
                (self.spools_dir / f"{stem}{ext}").unlink(missing_ok=True)
            return True
        return False

    def _drop(self, stem: str) -> None:
        """Forget a discarded spool: its descriptor and its replica's writer (whose file the deletion removed)."""
        sp = self.open.pop(stem)
        os.close(sp.fd)
        self._writer_done((sp.service, sp.replica))

    def _writer_done(self, key: tuple[str, str]) -> None:
        writer = self.writers.pop(key, None)
        if writer is not None:
            writer.close()


def _main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print("usage: python -m arkserve.runtimes.logpump PUMP_DIR LOG_DIR MAX_BYTES [LOCK_FD]", file=sys.stderr)
        return 2
    pump = Pump(Path(argv[1]), Path(argv[2]), int(argv[3]), lock_fd=int(argv[4]) if len(argv) == 5 else None)

    def stop(_sig: int, _frame: object) -> None:
        pump.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return pump.run()


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
