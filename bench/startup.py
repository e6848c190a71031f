"""Time from a scale command to the first ready replica, on the local and the Docker runtime.

Runs the real reconciler (default timings) over a SQLite store in a temp dir. Each round scales a
service 0 -> 1 by writing desired state exactly as the API does, and measures until the replica row
turns ``ready`` (the moment the gateway may route to it). Docker is measured when a daemon answers
and the test image exists (``tests/images/busybox.sh`` builds it).

    .venv/bin/python bench/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.factory import make_runtime
from arkserve.schemas import ServiceSpec
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import open_store

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "reconciler" / "app.py"
BUSYBOX = "arkserve-test/busybox:1"
BB_SERVE = "mkdir -p /tmp/www; echo ok > /tmp/www/healthz; exec httpd -f -p $PORT -h /tmp/www"


def _docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    ok = subprocess.run(["docker", "image", "inspect", BUSYBOX], capture_output=True).returncode == 0
    return ok or subprocess.run(["sh", str(ROOT / "tests/images/busybox.sh")], capture_output=True).returncode == 0


def measure(kind: str, rounds: int) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"arkserve-bench-{kind}-"))
    store = open_store(f"sqlite:///{tmp}/arkserve.db")
    runtime = make_runtime(kind, tmp)
    if kind == "local":
        (tmp / "app").mkdir()
        shutil.copy(APP, tmp / "app" / "app.py")
        spec = ServiceSpec(image=str(tmp / "app"), port=8000, command=f"{sys.executable} app.py")
    else:
        spec = ServiceSpec(image=BUSYBOX, port=8000, command=BB_SERVE)
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "bench", "h", "user").id
        service_store.create(conn, "bench", owner, spec.model_dump(), 0, None)
    rec = Reconciler(store, runtime, tmp)
    thread = threading.Thread(target=rec.run, daemon=True)
    thread.start()
    times: list[float] = []

    def replicas() -> list[service_store.ReplicaRow]:
        with store.read() as conn:
            return service_store.list_replicas(conn)

    try:
        for _ in range(rounds):
            with store.begin() as conn:
                service_store.update_desired(conn, service_store.get(conn, "bench"), replica_count=1)
            t0 = time.monotonic()
            while not any(r.state == "ready" for r in replicas()):
                if time.monotonic() - t0 > 120:
                    raise TimeoutError(f"{kind}: no ready replica after 120 s")
                time.sleep(0.005)
            times.append(time.monotonic() - t0)
            with store.begin() as conn:
                service_store.update_desired(conn, service_store.get(conn, "bench"), replica_count=0)
            while replicas():
                time.sleep(0.05)
    finally:
        rec.stop_event.set()
        thread.join(30)
        rec.stop()
        for info in runtime.list():
            runtime.stop(info.service, info.replica, 1.0)
        runtime.close()
        store.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    kinds = ["local"] + (["docker"] if _docker_ready() else [])
    print(f"{'runtime':8} {'median s':>9} {'min s':>7} {'max s':>7}  rounds")
    for kind in kinds:
        t = measure(kind, args.rounds)
        print(f"{kind:8} {statistics.median(t):9.2f} {min(t):7.2f} {max(t):7.2f}  {args.rounds}")
    if "docker" not in kinds:
        print("docker: skipped (no daemon or test image)")


if __name__ == "__main__":
    main()
