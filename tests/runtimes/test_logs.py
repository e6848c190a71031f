"""The per-replica log files: format, rotation, reading (since/tail/merge/previous), following (the local
runtime's pump: test_logpump.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arkserve.logs import LogLine, LogWriter, follow_logs, last_timestamp, log_path, parse_ts, read_logs, rotate

from .conftest import wait_until

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


@given(ts=st.floats(min_value=0, max_value=4e9), text=st.text().filter(lambda t: "\n" not in t and "\r" not in t))
def test_line_format_round_trips(ts: float, text: str) -> None:
    line = LogLine.parse(LogLine(ts, "r0000a1", text).format())
    assert line is not None and line.replica == "r0000a1" and line.text == text
    assert abs(line.ts - ts) < 2e-6


def test_parse_ts_accepts_docker_nanoseconds() -> None:
    assert parse_ts("2024-05-01T12:00:00.123456789Z") == parse_ts("2024-05-01T12:00:00Z") + 0.123456789
    assert LogLine.parse("garbage") is None


def test_read_since_tail_and_merge_across_replicas(tmp_path: Path) -> None:
    a, b = writer(tmp_path, "r0000a1"), writer(tmp_path, "r0000b2")
    for i in range(5):
        a.write(f"a{i}\n", ts=100.0 + 2 * i)
        b.write(f"b{i}", ts=101.0 + 2 * i)
    assert [x.text for x in read_logs(tmp_path, "svc", "r0000a1")] == ["a0", "a1", "a2", "a3", "a4"]
    merged = read_logs(tmp_path, "svc")
    assert [x.text for x in merged][:4] == ["a0", "b0", "a1", "b1"]
    assert [x.text for x in read_logs(tmp_path, "svc", since=107.0)] == ["b3", "a4", "b4"]
    assert [x.text for x in read_logs(tmp_path, "svc", tail=2)] == ["a4", "b4"]
    assert read_logs(tmp_path, "svc", tail=0) == [] and read_logs(tmp_path, "nope") == []
    assert last_timestamp(log_path(tmp_path, "svc", "r0000b2")) == 109.0


def test_size_rotation_keeps_one_old_file(tmp_path: Path) -> None:
    w = writer(tmp_path, "r0000a1", max_bytes=200)
    for i in range(20):
        w.write(f"line {i}", ts=1000.0 + i)
    current = read_logs(tmp_path, "svc", "r0000a1")
    previous = read_logs(tmp_path, "svc", "r0000a1", previous=True)
    assert current[-1].text == "line 19" and previous and previous[-1].ts < current[0].ts
    assert log_path(tmp_path, "svc", "r0000a1").stat().st_size <= 200
    assert not Path(f"{log_path(tmp_path, 'svc', 'r0000a1')}.2").exists()
    rotate(log_path(tmp_path, "svc", "r0000a1"))
    assert [x.text for x in read_logs(tmp_path, "svc", "r0000a1", previous=True)] == [x.text for x in current]


def test_follow_yields_existing_then_new_lines_across_rotation(tmp_path: Path) -> None:
    a = writer(tmp_path, "r0000a1", max_bytes=120)
    a.write("old")
    stop = threading.Event()
    seen: list[str] = []

    def consume() -> None:
        seen.extend(line.text for line in follow_logs(tmp_path, "svc", poll_s=0.02, stop=stop))

    t = threading.Thread(target=consume)
    t.start()
    wait_until(lambda: seen == ["old"], timeout=5)
    for i in range(4):  # rotates at 120 bytes, about every third line
        a.write(f"new {i}")
        wait_until(lambda: f"new {i}" in seen, timeout=5, what=f"new {i}")
    b = writer(tmp_path, "r0000b2")
    b.write("from b")
    wait_until(lambda: len(seen) == 6, timeout=5, what="the new replica's line")
    stop.set()
    t.join(5)
    assert seen[0] == "old" and sorted(seen[1:]) == ["from b", "new 0", "new 1", "new 2", "new 3"]
