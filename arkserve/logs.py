"""Per-replica log files: the writer runtimes append to and the reader the api/cli use.

Layout: ``<log_dir>/<service>/<replica>.log`` (``log_dir`` is ``<data_dir>/logs``).
Each line is ``<UTC RFC 3339 timestamp, microseconds> <replica> <text>``, e.g.
``2024-05-01T12:00:00.123456Z r1a2b3c listening on 8000``. Files live outside the
replica, so logs outlive processes and containers.

Rotation: when the file passes ``max_bytes`` it is renamed to ``<replica>.log.1``
(replacing an older one) and a new file starts. A runtime starting a replica id
again rotates too, so ``previous=True`` reads the previous run (or, after a size
rotation, the older part of the current run) like ``kubectl logs --previous``.

A record ends at LF and nowhere else: a replica's CR (progress bars), U+2028 or NEL stays inside its line,
so every reader splits on LF only (else the rest of such a line is lost, or reads as a record with any
replica and time the replica chose). ``tail`` reads each file backwards in blocks until it has its lines.

The local runtime's shared log pump (``arkserve.runtimes.logpump``) and the docker runtime write
through :class:`LogWriter`. This module imports only the standard library (the pump process is small).
"""

from __future__ import annotations

import heapq
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
SUFFIX = ".log"


def log_dir_for(data_dir: Path) -> Path:
    return data_dir / "logs"


def log_path(log_dir: Path, service: str, replica: str, previous: bool = False) -> Path:
    return log_dir / service / f"{replica}{SUFFIX}{'.1' if previous else ''}"


def remove_service_logs(log_dir: Path, service: str) -> None:
    """Delete a deleted service's log files (all its replicas'). They are moved aside first, so a new service that
    takes the name at once starts with an empty folder."""
    folder = log_dir / service
    aside = log_dir / f".deleted-{service}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        folder.rename(aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def format_ts(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> float:
    """RFC 3339 in UTC (``Z``), any number of fraction digits (docker writes nanoseconds)."""
    head, _, frac = text.rstrip("Z").partition(".")
    base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


@dataclass(frozen=True, order=True)
class LogLine:
    ts: float
    replica: str
    text: str

    def format(self) -> str:
        return f"{format_ts(self.ts)} {self.replica} {self.text}"

    @classmethod
    def parse(cls, raw: str) -> LogLine | None:
        parts = raw.rstrip("\n").split(" ", 2)
        if len(parts) < 2:
            return None
        try:
            ts = parse_ts(parts[0])
        except ValueError:
            return None
        return cls(ts, parts[1], parts[2] if len(parts) == 3 else "")


class LogWriter:
    """Appends timestamped lines for one replica; rotates at ``max_bytes`` keeping one old file."""

    def __init__(self, path: Path, replica: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path, self.replica, self.max_bytes = path, replica, max_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")  # noqa: SIM115 - held open until close()
        self.last_ts = last_timestamp(path)

    def write(self, text: str, ts: float | None = None) -> None:
        self.write_many([text], ts)

    def write_many(self, texts: list[str], ts: float | None = None) -> None:
        """Append lines stamped ``ts`` (now by default) with one flush; rotation happens between lines."""
        stamp = time.time() if ts is None else ts
        with self._lock:
            for text in texts:
                data = LogLine(stamp, self.replica, text.rstrip("\r\n")).format().encode("utf-8", "replace") + b"\n"
                if self._fh.tell() + len(data) > self.max_bytes and self._fh.tell() > 0:
                    self._fh.close()
                    os.replace(self.path, f"{self.path}.1")
                    self._fh = open(self.path, "ab")  # noqa: SIM115
                self._fh.write(data)
            self._fh.flush()
            self.last_ts = max(self.last_ts or 0.0, stamp)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def rotate(path: Path) -> None:
    """Move a non-empty log aside (a replica id starting again): it becomes the ``previous`` log."""
    if path.exists() and path.stat().st_size > 0:
        os.replace(path, f"{path}.1")


def last_timestamp(path: Path) -> float | None:
    """Timestamp of the last complete line of ``path`` (read from the end), None when empty."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 65536))
            lines = fh.read().split(b"\n")  # records end in \n only (see the module's docstring)
    except FileNotFoundError:
        return None
    for raw in reversed(lines):
        line = LogLine.parse(raw.decode("utf-8", "replace"))
        if line is not None:
            return line.ts
    return None


def _files(log_dir: Path, service: str, replica: str | None, previous: bool) -> list[Path]:
    for name in (service, replica or "r"):  # names as the platform makes them, never a path (the API checks too)
        if name.startswith(".") or "/" in name or "\0" in name or not name:
            raise ValueError(f"not a service or replica name: {name!r}")
    if replica is not None:
        return [log_path(log_dir, service, replica, previous)]
    pattern = f"*{SUFFIX}.1" if previous else f"*{SUFFIX}"
    return sorted((log_dir / service).glob(pattern))


def _read_file(path: Path, since: float | None) -> Iterator[LogLine]:
    try:
        with open(path, encoding="utf-8", errors="replace", newline="\n") as fh:  # split on \n only
            for raw in fh:
                line = LogLine.parse(raw)
                if line is not None and (since is None or line.ts >= since):
                    yield line
    except FileNotFoundError:
        return


def _read_from(path: Path, offset: int) -> tuple[list[LogLine], int, int]:
    """Complete lines of ``path`` after byte ``offset``, the offset after the last of them, and the inode read."""
    with open(path, "rb") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        fh.seek(offset)
        chunk = fh.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    parsed = (LogLine.parse(raw) for raw in complete.decode("utf-8", "replace").split("\n")[:-1])
    return [line for line in parsed if line is not None], offset + len(complete), inode


TAIL_BLOCK = 64 * 1024  # bytes :func:`_tail_file` reads at a time, from the end


def _tail_file(path: Path, n: int, since: float | None, complete_only: bool) -> tuple[list[LogLine], int, int]:
    """The last ``n`` records of ``path`` stamped at or after ``since`` (oldest first), read backwards in blocks:
    a short tail of a big file reads a few blocks, not the file. Also the offset just after the last complete
    record and the inode read. ``complete_only``: leave out a last line still without its LF (as
    :func:`_read_from`); else it counts (as :func:`_read_file`)."""
    found: list[LogLine] = []  # newest first
    with open(path, "rb") as fh:
        inode = os.fstat(fh.fileno()).st_ino
        pos = end = fh.seek(0, os.SEEK_END)
        carry = b""  # the start of a record whose beginning is in a block not read yet
        at_end = True  # the next piece is the one after the file's last \n: "" or a line being written
        while pos > 0 and (len(found) < n or at_end):
            step = min(TAIL_BLOCK, pos)
            pos -= step
            fh.seek(pos)
            pieces = (fh.read(step) + carry).split(b"\n")
            carry = pieces.pop(0) if pos > 0 else b""  # at byte 0 the first piece is a whole record
            for raw in reversed(pieces):
                if at_end:
                    at_end = False
                    if complete_only:
                        end -= len(raw)
                        continue
                    if not raw:
                        continue
                line = LogLine.parse(raw.decode("utf-8", "replace"))
                if line is not None and (since is None or line.ts >= since):
                    found.append(line)
                    if len(found) >= n:
                        break
    found.reverse()
    return found, end, inode


def read_logs(log_dir: Path, service: str, replica: str | None = None, since: float | None = None,
              tail: int | None = None, previous: bool = False) -> list[LogLine]:
    """Lines of one replica, or of every replica of ``service`` merged by time.

    ``since`` keeps lines stamped at or after that unix time; ``tail`` keeps the last N (each file is read from
    its end until it has N, then the files' tails are merged)."""
    files = _files(log_dir, service, replica, previous)
    if tail is None:
        return list(heapq.merge(*(_read_file(p, since) for p in files)))
    if tail <= 0:
        return []
    tails: list[list[LogLine]] = []
    for path in files:
        try:
            tails.append(_tail_file(path, tail, since, complete_only=False)[0])
        except FileNotFoundError:
            continue
    return list(deque(heapq.merge(*tails), maxlen=tail))


class Follower:
    """Reads the log of a service (or of one replica) as it grows: :meth:`start` gives the lines there are (as
    :func:`read_logs`), each :meth:`poll` those written since, following rotation and, for a whole service,
    replicas that appear later. Both are quick blocking file reads that never wait for lines, so a caller
    polls them from a worker thread and waits between polls where it likes (the API: on its event loop)."""

    def __init__(self, log_dir: Path, service: str, replica: str | None = None) -> None:
        self.log_dir, self.service, self.replica = log_dir, service, replica
        self._offsets: dict[Path, tuple[int, int]] = {}  # path -> (inode, offset)

    def start(self, since: float | None = None, tail: int | None = None) -> list[LogLine]:
        existing: list[list[LogLine]] = []
        for path in _files(self.log_dir, self.service, self.replica, False):
            try:  # remember exactly what was read, so a line written meanwhile comes with the first poll
                if tail is None:
                    lines, off, ino = _read_from(path, 0)
                    lines = [line for line in lines if since is None or line.ts >= since]
                else:
                    lines, off, ino = _tail_file(path, tail, since, complete_only=True)
            except FileNotFoundError:
                continue
            self._offsets[path] = (ino, off)
            existing.append(lines)
        merged: Iterable[LogLine] = heapq.merge(*existing)
        if tail is not None:
            merged = deque(merged, maxlen=tail) if tail > 0 else []
        return list(merged)

    def poll(self) -> list[LogLine]:
        fresh: list[LogLine] = []
        for path in _files(self.log_dir, self.service, self.replica, False):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            ino, off = self._offsets.get(path, (st.st_ino, 0))
            if ino != st.st_ino or st.st_size < off:  # rotated: finish the old file, then start the new one
                old = Path(f"{path}.1")
                if old.exists() and old.stat().st_ino == ino:
                    fresh.extend(_read_from(old, off)[0])
                off = 0
            try:
                lines, off, ino = _read_from(path, off)
            except FileNotFoundError:
                continue
            fresh.extend(lines)
            self._offsets[path] = (ino, off)
        return sorted(fresh)


def follow_logs(log_dir: Path, service: str, replica: str | None = None, since: float | None = None,
                tail: int | None = None, poll_s: float = 0.2,
                stop: threading.Event | None = None) -> Iterator[LogLine]:
    """Yield the existing lines (as :func:`read_logs`), then new ones as they are written (a :class:`Follower`
    polled every ``poll_s``). Ends when ``stop`` is set."""
    done = stop or threading.Event()
    follower = Follower(log_dir, service, replica)
    yield from follower.start(since, tail)
    while not done.is_set():
        yield from follower.poll()
        done.wait(poll_s)
