"""Many replicas of one tiny app on the local runtime: scale 0 -> N -> 0, and the platform's memory per replica.

Runs the real reconciler (default timings) over a SQLite store in a temp dir, like ``bench/startup.py``.
The app is busybox ``httpd`` serving a directory (Debian ``busybox-static``, as in the test image). The
service is created through the store (the API's replica cap does not apply), scaled to N by writing desired
state as the API does, and timed until N replicas are ``ready``; then scaled to 0 and timed until no replica
row and no runtime object is left. The scale-up also reports when the last replica was started, and how much of
that the runtime's ``start`` took (one service's pass starts them one after the other): the rest is the
platform's own start path (store reads and writes, placement, specs).

Memory: while the N replicas run, every process on the host that exists because of them is found (each
replica's process group, plus log-pump processes) and split into the app (the ``httpd`` processes) and the
platform's overhead (sandbox, shells, pumps: everything else). The overhead is reported per replica as RSS
(what the issue's target counts), PSS (RSS with shared pages divided among their sharers) and private memory
(pages no other process maps); the log pumps' RSS is also shown on its own.

    .venv/bin/python bench/replicas.py [--replicas 500] [--compare | --root /tmp/before [--runs 2]]

``--compare`` runs the bench four times, alternating a runtime that keeps bubblewrap's monitor process per
replica (``LocalRuntime.drop_monitor=False``, the process model before ``runtimes/detach.py``) with the
default that drops it. ``--root DIR [--runs 2]`` runs it in fresh processes, alternating the ``arkserve``
package in DIR (an older commit's) with this tree's (``--root`` twice: those two).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from alternation import add_options, alternate

import arkserve
from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.base import ReplicaInfo, ReplicaSpec
from arkserve.runtimes.factory import make_runtime
from arkserve.runtimes.local import LocalRuntime
from arkserve.schemas import ServiceSpec
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import open_store

APP_COMMAND = "exec busybox httpd -f -p 127.0.0.1:$PORT -h www"
PUMP_MARKERS = ("arkserve.logs", "arkserve.runtimes.logpump")


@dataclass
class Memory:
    app_rss_kb: int = 0
    overhead_rss_kb: int = 0
    overhead_pss_kb: int = 0
    overhead_uss_kb: int = 0  # private pages only (Private_Clean + Private_Dirty)
    overhead_processes: int = 0
    pump_rss_kb: int = 0  # log pumps: part of the overhead


def _stat(pid: int) -> tuple[str, int] | None:
    """(comm, pgid) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    return comm, int(raw[raw.rindex(")") + 2:].split()[2])


def _kb(pid: int, field: str, source: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure_memory(groups: set[int]) -> Memory:
    mem = Memory()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        st = _stat(pid)
        if st is None:
            continue
        comm, pgid = st
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pump = any(m in cmdline for m in PUMP_MARKERS)
        if pgid not in groups and not pump:
            continue
        rss = _kb(pid, "VmRSS", "status")
        if comm == "httpd" or (comm == "busybox" and "httpd" in cmdline):
            mem.app_rss_kb += rss
        else:
            mem.overhead_rss_kb += rss
            mem.overhead_pss_kb += _kb(pid, "Pss", "smaps_rollup")
            mem.overhead_uss_kb += _kb(pid, "Private_Clean", "smaps_rollup") + _kb(pid, "Private_Dirty",
                                                                                  "smaps_rollup")
            mem.overhead_processes += 1
            mem.pump_rss_kb += rss if pump else 0
    return mem


def run(n: int, timeout_s: float, drop_monitor: bool = True) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-bench-replicas-"))
    tmp.chmod(0o755)
    app = tmp / "app"
    (app / "www").mkdir(parents=True)
    (app / "www" / "index.html").write_text("ok\n")
    store = open_store(f"sqlite:///{tmp}/arkserve.db")
    runtime = make_runtime("local", tmp / "data")
    assert isinstance(runtime, LocalRuntime)
    runtime.drop_monitor = drop_monitor
    starts = [0.0, 0.0]  # seconds spent in runtime.start (the one service's pass starts them one by one), last end
    inner_start = runtime.start

    def timed_start(spec: ReplicaSpec) -> ReplicaInfo:
        t = time.monotonic()
        try:
            return inner_start(spec)
        finally:
            starts[0] += time.monotonic() - t
            starts[1] = time.monotonic()

    runtime.start = timed_start  # type: ignore[method-assign]
    spec = ServiceSpec(image=str(app), port=8000, command=APP_COMMAND)
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "bench", "h", "user").id
        service_store.create(conn, "bench", owner, spec.model_dump(), 0, None)
    rec = Reconciler(store, runtime, tmp / "data")
    thread = threading.Thread(target=rec.run, daemon=True)
    thread.start()
    out: dict[str, float] = {}

    def rows() -> list[service_store.ReplicaRow]:
        with store.read() as conn:
            return service_store.list_replicas(conn)

    def scale(count: int) -> float:
        with store.begin() as conn:
            service_store.update_desired(conn, service_store.get(conn, "bench"), replica_count=count)
        return time.monotonic()

    try:
        t0 = scale(n)
        while sum(1 for r in rows() if r.state == "ready") < n:
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"fewer than {n} replicas ready after {timeout_s:g} s")
            time.sleep(0.05)
        out["up_s"] = time.monotonic() - t0
        out["last_start_s"], out["runtime_start_s"] = starts[1] - t0, starts[0]
        time.sleep(2)  # let the pass that saw them ready settle before counting memory
        mem = measure_memory({int(i.runtime_id) for i in runtime.list()})
        out["overhead_rss_mb"] = mem.overhead_rss_kb / 1024 / n
        out["overhead_pss_mb"] = mem.overhead_pss_kb / 1024 / n
        out["overhead_uss_mb"] = mem.overhead_uss_kb / 1024 / n
        out["pump_rss_mb"] = mem.pump_rss_kb / 1024
        out["app_rss_mb"] = mem.app_rss_kb / 1024 / n
        out["overhead_processes"] = mem.overhead_processes / n
        t0 = scale(0)
        while rows() or runtime.list():
            if time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"{len(rows())} replicas left after {timeout_s:g} s")
            time.sleep(0.05)
        out["down_s"] = time.monotonic() - t0
    finally:
        rec.stop_event.set()
        thread.join(30)
        rec.stop()
        for info in runtime.list():
            runtime.stop(info.service, info.replica, 1.0)
        runtime.close()
        store.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicas", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=600.0, help="give up a phase after this many seconds")
    ap.add_argument("--compare", action="store_true",
                    help="also run with bwrap's monitor kept (LocalRuntime.drop_monitor=False), alternating")
    add_options(ap)
    args = ap.parse_args()
    if args.root:
        alternate(args.root, args.runs, [__file__, "--replicas", str(args.replicas), "--timeout", str(args.timeout)])
        return
    print(f"arkserve from {Path(arkserve.__file__).parent}", flush=True)
    variants = [("", True)] if not args.compare else [("monitor kept", False), ("monitor dropped", True)] * 2
    for label, drop in variants:
        r = run(args.replicas, args.timeout, drop_monitor=drop)
        if label:
            print(f"--- {label}")
        print(f"replicas                          {args.replicas}")
        print(f"scale 0 -> N, all ready           {r['up_s']:.1f} s (the last started at {r['last_start_s']:.1f} s, "
              f"{r['runtime_start_s']:.1f} s of it in runtime.start; the rest of the start path: "
              f"{r['last_start_s'] - r['runtime_start_s']:.1f} s)")
        print(f"scale N -> 0, all gone            {r['down_s']:.1f} s")
        print(f"platform overhead per replica     {r['overhead_rss_mb']:.2f} MB RSS, {r['overhead_pss_mb']:.2f} MB "
              f"PSS, {r['overhead_uss_mb']:.2f} MB private ({r['overhead_processes']:.2f} processes)")
        print(f"log pump(s), all replicas         {r['pump_rss_mb']:.1f} MB RSS")
        print(f"the app itself per replica        {r['app_rss_mb']:.2f} MB RSS", flush=True)


if __name__ == "__main__":
    main()
