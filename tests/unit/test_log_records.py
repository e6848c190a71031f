"""What a log record is when read back: one written line, ended by LF and nothing else (CR, U+2028, NEL... stay
inside it, in every reader: read, tail, follow, the last timestamp), and ``tail`` reads each file from its end (the
same lines as a full read's last N, for a bounded number of bytes)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve import logs
from arkserve.logs import Follower, LogLine, LogWriter, follow_logs, last_timestamp, log_path, read_logs

# What str.splitlines / bytes.splitlines / universal newlines would also split on; the writer ends records with LF.
BREAKERS = "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"  # CR last: bytes split on it
FORGED = "2030-01-01T00:00:00.000000Z rFORGED forged"
TEXTS = ["progress 10%\rprogress 50%\rdone downloading", *(f"x{b}{FORGED}" for b in BREAKERS)]

_OPEN: list[LogWriter] = []


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def writer(log_dir: Path, replica: str, max_bytes: int = 10_000_000) -> LogWriter:
    w = LogWriter(log_path(log_dir, "svc", replica), replica, max_bytes)
    _OPEN.append(w)
    return w


def _followed(log_dir: Path, tail: int | None = None) -> list[LogLine]:
    stop = threading.Event()
    stop.set()  # the lines there are, then the loop ends at once
    return list(follow_logs(log_dir, "svc", tail=tail, stop=stop))


def test_a_record_ends_at_lf_only_in_every_reader(tmp_path: Path) -> None:
    w = writer(tmp_path, "r0000a1")
    for i, text in enumerate(TEXTS):
        w.write(text, ts=1000.0 + i)
    want = [LogLine(1000.0 + i, "r0000a1", text) for i, text in enumerate(TEXTS)]
    assert read_logs(tmp_path, "svc") == want  # no line lost after a CR, no record "rFORGED" stamped 2030
    assert read_logs(tmp_path, "svc", tail=3) == want[-3:] and read_logs(tmp_path, "svc", tail=100) == want
    assert _followed(tmp_path) == want and _followed(tmp_path, tail=3) == want[-3:]
    assert last_timestamp(log_path(tmp_path, "svc", "r0000a1")) == 1000.0 + len(TEXTS) - 1
    follower = Follower(tmp_path, "svc")  # follow mode: lines written after the start come one record each
    assert follower.start() == want
    w.write("later\u2028" + FORGED, ts=2000.0)
    assert follower.poll() == [LogLine(2000.0, "r0000a1", "later\u2028" + FORGED)]


def test_tail_is_the_last_lines_of_a_full_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "TAIL_BLOCK", 37)  # records across block boundaries, many blocks a file
    rng = random.Random(7)
    writers = [writer(tmp_path, f"r0000a{i}", max_bytes=4000) for i in range(3)]  # rotates every ~60 lines
    for k in range(700):
        text = "".join(rng.choice("ab é\r\u2028\x85") for _ in range(rng.randint(0, 40)))
        rng.choice(writers).write(text, ts=1000.0 + k / 2)
    with open(log_path(tmp_path, "svc", "r0000a0"), "ab") as fh:  # a line still being written (no LF yet)
        fh.write(b"2030-01-01T00:00:00.000000Z r0000a0 half \xe2\x80")
    for replica in (None, "r0000a1", "r0000a0", "r0gone00"):
        for previous in (False, True):
            for since in (None, 1100.0, 1340.0, 5000.0):
                full = read_logs(tmp_path, "svc", replica, since=since, previous=previous)
                for n in (1, 2, 9, 64, 1000):
                    assert read_logs(tmp_path, "svc", replica, since=since, tail=n, previous=previous) == full[-n:]
    for n in (0, 1, 9, 1000):  # follow leaves the unfinished line to the first poll that sees its LF
        complete = [line for line in read_logs(tmp_path, "svc") if line.text != "half \ufffd"]
        follower = Follower(tmp_path, "svc")
        assert follower.start(tail=n) == (complete[-n:] if n else [])
        with open(log_path(tmp_path, "svc", "r0000a0"), "ab") as fh:
            fh.write(b"!\n")
        assert [line.text for line in follower.poll()] == ["half \ufffd!"]
        with open(log_path(tmp_path, "svc", "r0000a0"), "ab") as fh:
            fh.write(b"2030-01-01T00:00:00.000000Z r0000a0 half \xe2\x80")  # unfinished again, for the next n


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and the like (Linux: /proc/self/io ``rchar``)."""
    for row in Path("/proc/self/io").read_text().splitlines():
        if row.startswith("rchar:"):
            return int(row.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_short_tail_of_a_big_file_reads_its_end_only(tmp_path: Path) -> None:
    path = log_path(tmp_path, "svc", "r0000a1")
    path.parent.mkdir(parents=True)
    filler = LogLine(1000.0, "r0000a1", "x" * 80).format().encode() + b"\n"
    with open(path, "wb") as fh:
        fh.write(filler * 250_000)  # 25 MB
    w = writer(tmp_path, "r0000a1", max_bytes=100_000_000)  # no rotation: one big file
    for i in range(5):
        w.write(f"last {i}", ts=2000.0 + i)
    size = path.stat().st_size
    last = [f"last {i}" for i in range(5)]
    before = _bytes_read()
    assert [line.text for line in read_logs(tmp_path, "svc", tail=5)] == last
    assert [line.text for line in read_logs(tmp_path, "svc", tail=7)] == ["x" * 80] * 2 + last
    assert [line.text for line in read_logs(tmp_path, "svc", since=2003.0, tail=2)] == last[3:]
    assert [line.text for line in _followed(tmp_path, tail=5)] == last
    tails = _bytes_read() - before
    before = _bytes_read()
    assert len(read_logs(tmp_path, "svc")) == 250_005
    full = _bytes_read() - before  # the counter sees these reads: a full read counts the whole file
    assert tails < 1_000_000 and full >= size, (tails, full, size)
