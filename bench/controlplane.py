"""The control plane at scale: does its cost follow what changed? (issue 16)

One command, one run, everything on this machine over a SQLite store in a temp dir (``--postgres``: a fresh
database on a throwaway PostgreSQL server, or on the server at ``--postgres URL``); the services are written
straight into the store (0 replicas each, as ``service create`` would leave them):

* reconciler CPU while nothing changes, at N services (the bench process does nothing else meanwhile);
* scale 0 -> 1 of one service until its replica row is ``ready``, at 10 and at N services (same run);
* a gateway worker (a real :class:`~arkserve.gateway.app.Gateway` over the store, in its own process)
  while 10 services change per second (a ready replica row appears or goes, as when replicas start
  and stop), its CPU read from ``/proc``;
* what one snapshot change costs a worker: the source's ``load()`` plus ``Core.apply``, in CPU time;
* how long a routing change takes to serve: from the start of its write until a worker's snapshot holder has
  applied it, with the holder watching the store (``StoreSnapshotSource.watch``, PostgreSQL) and with its 0.1 s
  poll alone, alternating.

    .venv/bin/python bench/controlplane.py [--services 10000] [--idle-s 10] [--rounds 3] [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from arkserve.auth.vault import MasterKey
from arkserve.domain.routing import RoutingSnapshot
from arkserve.gateway.config import GatewayConfig
from arkserve.gateway.core import Core
from arkserve.gateway.snapshot import SnapshotHolder
from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.local import LocalRuntime
from arkserve.schemas import ServiceSpec
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, bump, open_store
from arkserve.store.routing import StoreSnapshotSource
from arkserve.store.tables import services

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests import pg  # noqa: E402  (a throwaway PostgreSQL server for --postgres)

APP = ROOT / "tests" / "reconciler" / "app.py"
TICK = os.sysconf("SC_CLK_TCK")


def database(tmp: Path, pg_admin: str | None) -> str:
    """A fresh, empty store: a SQLite file in ``tmp``, or a new database on the PostgreSQL server ``pg_admin``."""
    return f"sqlite:///{tmp}/arkserve.db" if pg_admin is None else pg.fresh_database(pg_admin)


def make_store(url: str, tmp: Path, n: int) -> tuple[Store, int]:
    """A store with ``n`` settled services of 0 replicas (bulk inserts); the first is the one the bench scales."""
    store = open_store(url)
    (tmp / "app").mkdir(exist_ok=True)
    shutil.copy(APP, tmp / "app" / "app.py")
    spec = ServiceSpec(image=str(tmp / "app"), port=8000, command=f"{sys.executable} app.py",
                       health_path="/healthz").model_dump()
    t = time.time()
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "bench", "h", "user").id
        for start in range(0, n, 1000):
            conn.execute(insert(services), [
                {"name": f"svc-{i:05d}", "owner_id": owner, "spec": spec, "replicas": 0, "generation": 1,
                 "gateway_port": None, "status": "stopped", "reason": "ScaledToZero",
                 "message": "0 replicas desired", "deleting": False,
                 "created_at": t, "updated_at": t} for i in range(start, min(n, start + 1000))])
        bump(conn, "specs")
        bump(conn)
        touch = getattr(service_store, "touch", None)  # the change feed, where there is one
        if touch is not None:
            touch(conn, *service_store.all_ids(conn))
    return store, owner


def _unsettled(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(services)
                                .where(services.c.status != "stopped")).scalar_one())


def _ready(store: Store) -> bool:
    with store.read() as conn:
        return any(r.state == "ready" for r in service_store.list_replicas(conn))


def _scale(store: Store, count: int) -> None:
    with store.begin() as conn:
        service_store.update_desired(conn, service_store.get(conn, "svc-00000"), replica_count=count)


def reconciler_phase(n: int, idle_s: float, rounds: int,
                     pg_admin: str | None) -> tuple[Store, str, Path, float, float, float]:
    """(store, its URL, dir, seconds to settle, CPU share while idle, median scale 0->1 latency) at ``n`` services."""
    tmp = Path(tempfile.mkdtemp(prefix=f"arkserve-cp-{n}-"))
    url = database(tmp, pg_admin)
    store, _ = make_store(url, tmp, n)
    runtime = LocalRuntime(tmp / "data")  # apart from the app's directory, as the runtime asks
    rec = Reconciler(store, runtime, tmp / "data")
    thread = threading.Thread(target=rec.run, daemon=True)
    t0 = time.monotonic()
    thread.start()
    try:
        while _unsettled(store):
            if time.monotonic() - t0 > 600:
                raise TimeoutError("services not settled after 600 s")
            time.sleep(0.2)
        while (getattr(rec, "seen", 0) < 0 or getattr(rec, "carry", None)
               or not all(f.done() for f in list(rec.inflight.values()))):
            time.sleep(0.05)  # the first pass over every service
        settle = time.monotonic() - t0
        time.sleep(max(1.0, 31.0 - (time.monotonic() - t0)) if n > 10 else 1.0)  # into the first 30 s resync period
        c0, w0 = time.process_time(), time.monotonic()
        time.sleep(idle_s)
        idle = (time.process_time() - c0) / (time.monotonic() - w0)
        times: list[float] = []
        for _ in range(rounds):
            _scale(store, 1)
            t1 = time.monotonic()
            while not _ready(store):
                if time.monotonic() - t1 > 120:
                    with store.read() as conn:
                        why = service_store.get(conn, "svc-00000").message
                    raise TimeoutError(f"no ready replica after 120 s: {why}")
                time.sleep(0.005)
            times.append(time.monotonic() - t1)
            _scale(store, 0)
            while True:
                with store.read() as conn:
                    if not service_store.list_replicas(conn):
                        break
                time.sleep(0.05)
    finally:
        rec.stop_event.set()
        thread.join(30)
        rec.stop()
        for info in runtime.list():
            runtime.stop(info.service, info.replica, 1.0)
        runtime.close()
    return store, url, tmp, settle, idle, statistics.median(times)


def _flip(store: Store, i: int, fake_ports: dict[int, str]) -> None:
    """Service ``svc-<i>`` gains a ready replica (a routing change), or loses the one it has."""
    with store.begin() as conn:
        svc = service_store.get(conn, f"svc-{i:05d}")
        rid = fake_ports.pop(i, None)
        if rid is not None:
            service_store.delete_replica(conn, rid)
            bump(conn)
            return
        rid = f"rb{i:05d}"
        service_store.save_replica(conn, service_store.ReplicaRow(
            id=rid, service_id=svc.id, revision="r1", state="ready", host="127.0.0.1", port=40000 + i % 20000,
            started_at=time.time(), ready_at=time.time()), routing_changed=True)
        fake_ports[i] = rid


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def gateway_phase(store: Store, url: str, n: int, window_s: float, per_s: int) -> float:
    """CPU share of one gateway worker process while ``per_s`` services change per second."""
    master = MasterKey.generate()
    proc = subprocess.Popen([sys.executable, __file__, "--gateway-worker", "-", master.to_b64()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(url + "\n")  # on stdin, not the command line, where ps would show a password
    proc.stdin.close()
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the gateway worker did not start")
        time.sleep(1.0)
        fake: dict[int, str] = {}
        c0, w0 = _cpu_s(proc.pid), time.monotonic()
        k = 0
        while time.monotonic() - w0 < window_s:
            _flip(store, 1 + (k * 7919) % (n - 1), fake)
            k += 1
            time.sleep(max(0.0, w0 + k / per_s - time.monotonic()))
        time.sleep(1.0)  # the last change is polled and applied inside the window
        return (_cpu_s(proc.pid) - c0) / (time.monotonic() - w0)
    finally:
        proc.terminate()
        proc.wait(30)


def apply_phase(store: Store, n: int, changes: int) -> tuple[float, float, float]:
    """(first full load + apply, median load, median apply) in CPU ms of the thread that does it (in a worker,
    load() runs in an executor thread and apply on the event loop)."""
    source = StoreSnapshotSource(store, MasterKey.generate(), worker="bench")

    async def run() -> tuple[float, float, float]:
        core = Core(GatewayConfig(addressing="host"), None)
        c0 = time.thread_time()
        snap: RoutingSnapshot = source.load()
        core.apply(snap)
        first = time.thread_time() - c0
        loads: list[float] = []
        applies: list[float] = []
        fake: dict[int, str] = {}
        for k in range(changes):
            _flip(store, 1 + (k * 104729) % (n - 1), fake)
            c0 = time.thread_time()
            snap = source.load()
            c1 = time.thread_time()
            core.apply(snap)
            applies.append(time.thread_time() - c1)
            loads.append(c1 - c0)
            source.applied(snap.version)
        return first * 1000, statistics.median(loads) * 1000, statistics.median(applies) * 1000

    return asyncio.run(run())


class _Unwatched:
    """A store source without its ``watch``: the holder polls it only (as before the watch existed)."""

    def __init__(self, source: StoreSnapshotSource) -> None:
        self.load, self.version, self.applied = source.load, source.version, source.applied


def propagation_phase(store: Store, n: int, changes: int) -> tuple[float, float, float]:
    """Median ms from the start of a routing change's write until a snapshot holder (poll 0.1 s, as a worker's)
    applied it: (watching the store, polling only, the write alone), the changes alternating between the two
    holders. On SQLite the source does not watch (``StoreSnapshotSource.watch``), so both poll."""
    sources = [StoreSnapshotSource(store, MasterKey.generate(), worker=w) for w in ("w", "p")]
    watched = SnapshotHolder(sources[0], lambda s: None, 0.1)
    polled = SnapshotHolder(_Unwatched(sources[1]), lambda s: None, 0.1)
    fake: dict[int, str] = {}

    async def run() -> tuple[float, float, float]:
        took: dict[int, list[float]] = {0: [], 1: [], 2: []}
        for holder in (watched, polled):
            await holder.refresh()
            holder.start()
        await asyncio.sleep(0.5)  # the watcher is in place (PostgreSQL: its LISTEN)
        try:
            for k in range(changes):
                holder = (watched, polled)[k % 2]
                seen = holder.current.version
                t0 = time.perf_counter()
                await asyncio.to_thread(_flip, store, 1 + (k * 6007) % (n - 1), fake)
                took[2].append(time.perf_counter() - t0)  # the write and the thread's hand-back
                while holder.current.version == seen:
                    await asyncio.sleep(0.0005)
                took[k % 2].append(time.perf_counter() - t0)
                await asyncio.sleep(0.05 + (k % 7) / 100)  # not in step with the poll
        finally:
            for holder in (watched, polled):
                await holder.stop()
            for source in sources:
                source.close()
        return tuple(statistics.median(took[i]) * 1000 for i in range(3))  # type: ignore[return-value]

    return asyncio.run(run())


def gateway_worker(url: str, master_b64: str) -> None:
    """The child of :func:`gateway_phase`: one gateway worker over the store until terminated."""
    import signal

    from arkserve.gateway.app import Gateway

    async def serve() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        source = StoreSnapshotSource(open_store(url, migrate_schema=False),
                                     MasterKey.from_b64(master_b64))
        config = GatewayConfig(addressing="host", host="127.0.0.1", host_port=0, admin_port=-1)
        gw = Gateway(config, source)
        await gw.start()
        print("ready", flush=True)
        await stop.wait()
        await gw.stop(grace_s=0.5)

    asyncio.run(serve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--idle-s", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--changes-per-s", type=int, default=10)
    ap.add_argument("--postgres", nargs="?", const=pg.THROWAWAY, metavar="URL",
                    help="a PostgreSQL store: a server started for the run, or databases made on the server at URL "
                         "(an admin URL that may CREATE DATABASE)")
    ap.add_argument("--gateway-worker", nargs=2, metavar=("URL", "MASTER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.gateway_worker:
        gateway_worker(sys.stdin.readline().strip(), args.gateway_worker[1])
        return
    with pg.admin_url_for(args.postgres) as pg_admin:
        run(args, pg_admin)


def run(args: argparse.Namespace, pg_admin: str | None) -> None:
    n = args.services
    rows: list[tuple[str, str, str, bool]] = []
    small, _, small_tmp, _, small_idle, small_lat = reconciler_phase(10, args.idle_s, args.rounds, pg_admin)
    small.dispose()
    shutil.rmtree(small_tmp, ignore_errors=True)
    store, url, tmp, settle, idle, lat = reconciler_phase(n, args.idle_s, args.rounds, pg_admin)
    try:
        gw_cpu = gateway_phase(store, url, n, args.idle_s, args.changes_per_s)
        first_ms, load_ms, apply_ms = apply_phase(store, n, 50)
        watch_ms, poll_ms, write_ms = propagation_phase(store, n, 40)
    finally:
        store.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append((f"reconciler CPU, nothing changing ({n} services)", f"{idle * 100:.1f} % of a core "
                 f"(10 services: {small_idle * 100:.1f} %; first pass over all: {settle:.1f} s)",
                 "<= 5 %", idle <= 0.05))
    rows.append((f"scale 0->1 ready ({n} vs 10 services)", f"{lat:.2f} s vs {small_lat:.2f} s (median of "
                 f"{args.rounds})", "<= 10-service time + 0.5 s", lat <= small_lat + 0.5))
    rows.append((f"gateway worker CPU, {args.changes_per_s} services changing per s", f"{gw_cpu * 100:.1f} %",
                 "<= 5 %", gw_cpu <= 0.05))
    change_ms = load_ms + apply_ms
    rows.append(("one snapshot change in a worker (CPU: store reads + apply)", f"{change_ms:.2f} ms = {load_ms:.2f} + "
                 f"{apply_ms:.2f} ms (first, full: {first_ms:.0f} ms)", "well under 1 ms", change_ms < 1.0))
    watched = "watching the store" if pg_admin is not None else "SQLite: polled too"
    rows.append(("a routing change: its write -> applied by a worker (median)", f"{watch_ms:.1f} ms {watched}, "
                 f"{poll_ms:.1f} ms with the 0.1 s poll alone (the write itself: {write_ms:.1f} ms)", "", True))
    kind = "SQLite" if pg_admin is None else "PostgreSQL"
    print(f"\n| what ({n} services, {kind}) | measured | target | verdict |\n|---|---|---|---|")
    for what, got, target, ok in rows:
        print(f"| {what} | {got} | {target or '-'} | {('pass' if ok else 'FAIL') if target else '-'} |")


if __name__ == "__main__":
    main()
