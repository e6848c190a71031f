"""The local runtime's shared log pump: one process for all replicas, nothing lost across rotation, a pump
killed and restarted, or a reconciler restart (real replicas in the sandbox, a real pump process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arkserve.logs import log_dir_for, log_path, read_logs
from arkserve.runtimes import spool
from arkserve.runtimes.base import ReplicaSpec
from arkserve.runtimes.local import LocalRuntime

from .conftest import APP_DIR, ROOT, wait_until

PY = sys.executable


def spec(command: str, replica: str = "r0000a1") -> ReplicaSpec:
    return ReplicaSpec(service="svc", replica=replica, revision="rev1", image=str(APP_DIR), command=command, port=8000)


def pumps(data_dir: Path) -> list[int]:
    """Pids of log pump processes serving ``data_dir`` (the shared one, or old per-replica ones)."""
    found = []
    for cmd in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmd.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in text and ("arkserve.runtimes.logpump" in text or "arkserve.logs pump" in text):
            found.append(int(cmd.parent.name))
    return found


def numbers(data_dir: Path, replica: str, previous: bool = False) -> list[int]:
    return [int(x.text.split()[1]) for x in read_logs(log_dir_for(data_dir), "svc", replica, previous=previous)
            if x.text.startswith("n ")]


def counter(n: int, every: int = 50) -> str:
    """Prints ``n 0`` .. ``n N-1``, pausing briefly every ``every`` lines, then waits to be stopped."""
    return (f"i=0; while [ $i -lt {n} ]; do echo \"n $i\"; i=$((i+1)); "
            f"[ $((i % {every})) -eq 0 ] && sleep 0.02; done; echo done; exec sleep 300")


@pytest.mark.parametrize(("data", "final", "lines", "used"), [
    (b"", False, [], 0),
    (b"a\nb\npart", False, [b"a", b"b"], 4),
    (b"a\nb\npart", True, [b"a", b"b", b"part"], 8),
    (b"a\r\n\n", False, [b"a\r", b""], 4),  # LogWriter strips the \r; an empty line stays a line
    (b"x" * 70000, False, [b"x" * 65536], 65536),  # no newline in 64 KiB: split like readline(65536)
    (b"x" * 70000 + b"\n", False, [b"x" * 65536, b"x" * 4464], 70001),
])
def test_split_lines(data: bytes, final: bool, lines: list[bytes], used: int) -> None:
    assert spool.split_lines(data, final) == (lines, used)


def test_resume_offset_is_the_first_unpunched_byte(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    path.write_bytes(b"a" * 10000 + b"\n" + b"rest\n")
    fd = os.open(path, os.O_RDWR)
    try:
        assert spool.resume_offset(fd) == 0
        spool.punch(fd, 0, 10001)
        assert spool.resume_offset(fd) == 10001
        assert os.fstat(fd).st_blocks * 512 <= 8192  # the consumed part is freed, not just zeroed
        spool.punch(fd, 10001, 10006)
        assert spool.resume_offset(fd) == 10006 == os.fstat(fd).st_size
    finally:
        os.close(fd)


def test_one_pump_process_serves_every_replica(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path, base_env={"PATH": os.environ["PATH"]})
    replicas = [f"r0000b{i}" for i in range(8)]
    infos = [rt.start(spec(counter(200), r)) for r in replicas]
    try:
        for r in replicas:
            wait_until(lambda r=r: numbers(tmp_path, r) == list(range(200)), timeout=20, what=f"{r}'s 200 lines")
        assert len(pumps(tmp_path)) == 1
        for info in infos:  # nothing of the platform's in a replica's process group but the sandbox
            group = [p for p in Path("/proc").glob("[0-9]*/stat")
                     if _pgid(p) == int(info.runtime_id)]
            assert all(b"python" not in (p.parent / "cmdline").read_bytes() for p in group)
    finally:
        for r in replicas:
            rt.stop("svc", r, grace_s=0)
    assert [x.text for x in read_logs(log_dir_for(tmp_path), "svc", replicas[0])][-1] == "done"
    wait_until(lambda: not pumps(tmp_path), timeout=20, what="the idle pump to exit")
    assert not list(spool.spool_dir(spool.pump_dir_for(tmp_path)).iterdir())


def _pgid(stat: Path) -> int:
    try:
        raw = stat.read_text()
    except OSError:
        return -1
    return int(raw[raw.rindex(")") + 2:].split()[2])


def test_nothing_lost_across_rotation_a_killed_pump_and_a_reconciler_restart(tmp_path: Path) -> None:
    """The replica is started by another process (a reconciler that then exits); the pump is killed with
    SIGKILL mid-stream while the replica keeps writing; the next runtime's list() brings a pump back. Every
    line arrives once or more, in order, across one size rotation."""
    n = 4000  # about 170 KB of log: one rotation at 100 KB; 28 KB of output
    code = (f"from pathlib import Path; from arkserve.runtimes.local import LocalRuntime\n"
            f"from arkserve.runtimes.base import ReplicaSpec\n"
            f"LocalRuntime(Path({str(tmp_path)!r}), log_max_bytes=100_000).start(ReplicaSpec('svc', 'r0000a1', "
            f"'rev1', {str(APP_DIR)!r}, {counter(n, every=20)!r}, 8000))\n")
    subprocess.run([PY, "-c", code], cwd=ROOT, check=True)
    wait_until(lambda: len(numbers(tmp_path, "r0000a1")) >= 300, timeout=20, what="the first 300 lines")
    (pid,) = pumps(tmp_path)
    os.kill(pid, signal.SIGKILL)
    out = next(spool.spool_dir(spool.pump_dir_for(tmp_path)).glob("*.out"))
    size = out.stat().st_size
    wait_until(lambda: out.stat().st_size > size + 10_000, timeout=20, what="output while no pump runs")
    assert not pumps(tmp_path)
    rt = LocalRuntime(tmp_path, log_max_bytes=100_000)  # the restarted reconciler
    assert len(rt.list()) == 1
    try:
        last = log_path(log_dir_for(tmp_path), "svc", "r0000a1")
        wait_until(lambda: last.exists() and b"done" in last.read_bytes(), timeout=30, what="the last line")
        assert len(pumps(tmp_path)) == 1
        older, current = numbers(tmp_path, "r0000a1", previous=True), numbers(tmp_path, "r0000a1")
        assert older and current, "one size rotation"
        seen = list(dict.fromkeys(older + current))  # first occurrences (a killed pump may write a batch twice)
        assert seen == list(range(n))
        assert out.stat().st_blocks * 512 <= 8192 < out.stat().st_size  # consumed bytes were freed
    finally:
        rt.stop("svc", "r0000a1", grace_s=0)
    wait_until(lambda: not out.exists(), what="the pump to finish and remove the spool")


def test_a_partial_last_line_is_kept_when_the_replica_stops(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path, base_env={"PATH": os.environ["PATH"]})
    rt.start(spec("printf 'whole\\npart'; sleep 0.5; printf 'ial\\nno newline'; exec sleep 300"))
    texts = lambda: [x.text for x in read_logs(log_dir_for(tmp_path), "svc", "r0000a1")]  # noqa: E731
    wait_until(lambda: len(texts()) >= 2, what="the second line")
    assert texts() == ["whole", "partial"]  # a partial line waits for its newline (or the end of the run)
    rt.stop("svc", "r0000a1", grace_s=0)
    wait_until(lambda: len(texts()) == 3, what="the partial last line")
    assert texts() == ["whole", "partial", "no newline"]


def test_a_sandboxed_replica_stops_as_soon_as_it_is_gone(tmp_path: Path) -> None:
    """Not after the host's init got round to reaping the sandbox's zombies (seconds on some hosts)."""
    rt = LocalRuntime(tmp_path, base_env={"PATH": os.environ["PATH"]})
    took = []
    for i in range(3):
        rt.start(spec("echo up; exec sleep 300", f"r0000c{i}"))
        wait_until(lambda i=i: read_logs(log_dir_for(tmp_path), "svc", f"r0000c{i}"), what="the replica's output")
        t0 = time.monotonic()
        rt.stop("svc", f"r0000c{i}", grace_s=5)
        took.append(time.monotonic() - t0)
    assert min(took) < 0.5, took


def test_the_pump_sleeps_while_replicas_are_quiet(tmp_path: Path) -> None:
    """Its own writes (hole punching) must not wake it again: no CPU spent while nobody writes."""
    rt = LocalRuntime(tmp_path, base_env={"PATH": os.environ["PATH"]})
    replicas = [f"r0000d{i:02x}" for i in range(20)]
    for r in replicas:
        rt.start(spec("echo started; exec sleep 300", r))
    try:
        for r in replicas:
            wait_until(lambda r=r: read_logs(log_dir_for(tmp_path), "svc", r), what=f"{r}'s line")
        (pid,) = pumps(tmp_path)

        def cpu_s() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before, t0 = cpu_s(), time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 3.0, timeout=10, what="3 s of quiet")
        assert cpu_s() - before < 0.1  # waking itself up costs ~10 % of a core here; the 1 s safety pass a few ms
    finally:
        for r in replicas:
            rt.stop("svc", r, grace_s=0)
