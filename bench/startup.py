"""Time from a scale command to the first ready replica, against the same app started alone, in one run.

*Alone*: the app's process is spawned directly (no platform, no sandbox) and timed until it first accepts a
TCP connection on its port (polled every millisecond). *Platform*: the real reconciler (default timings) over
a SQLite store in a temp dir scales a service 0 -> 1 by writing desired state exactly as the API does, timed
until the replica row turns ``ready`` (the moment the gateway may route to it). *Poll only*: the same
platform with the store wake-up off (``ReconcilerConfig.store_wake``: the loop notices the scale at its next
timed read of the change feed, as before), its overhead over alone. Rounds alternate between the three so
that all see the same machine. Apps: the Python test app (``tests/reconciler/app.py``) and busybox
``httpd`` on the local runtime; busybox on Docker when a daemon answers and the test image exists
(``tests/images/busybox.sh`` builds it), the platform only.

    .venv/bin/python bench/startup.py [--rounds 7]

``--root DIR [--runs 2]`` runs it in fresh processes, alternating the ``arkserve`` package in DIR (an older
commit's) with this tree's (``--root`` twice: those two); ``--no-docker`` skips the Docker row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from alternation import add_options, alternate

import arkserve
from arkserve.reconciler.config import ReconcilerConfig
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
TARGET_S = 0.1  # the platform's ready may come this much after the app alone accepts


def _docker_ready() -> bool:
    if not shutil.which("docker"):
        return False
    ok = subprocess.run(["docker", "image", "inspect", BUSYBOX], capture_output=True).returncode == 0
    return ok or subprocess.run(["sh", str(ROOT / "tests/images/busybox.sh")], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alone(command: str, app_dir: Path) -> float:
    """Seconds from spawning ``command`` (with ``PORT`` set) to its first accepted connection."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port)}
    t0 = time.monotonic()
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=app_dir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return time.monotonic() - t0
            except OSError:
                if time.monotonic() - t0 > 60 or proc.poll() is not None:
                    raise RuntimeError(f"{command!r} did not listen") from None
                time.sleep(0.001)
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


class Platform:
    """A reconciler over a temp store scaling one service 0 -> 1 -> 0."""

    def __init__(self, kind: str, spec: ServiceSpec, app_dir: Path | None, tmp: Path, *,
                 store_wake: bool = True) -> None:
        self.tmp, self.kind = tmp, kind
        if app_dir is not None:  # the local runtime's image is a directory
            spec = spec.model_copy(update={"image": str(app_dir)})
        self.store = open_store(f"sqlite:///{tmp}/arkserve.db")
        self.watch = sqlite3.connect(f"file:{tmp}/arkserve.db?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
        self.runtime = make_runtime(kind, tmp / "data")
        with self.store.begin() as conn:
            instance_types.seed(conn, [])
            owner = user_store.create(conn, "bench", "h", "user").id
            service_store.create(conn, "bench", owner, spec.model_dump(), 0, None)
        self.rec = Reconciler(self.store, self.runtime, tmp / "data", ReconcilerConfig(store_wake=store_wake))
        self.thread = threading.Thread(target=self.rec.run, daemon=True)
        self.thread.start()

    def _replicas(self) -> list[service_store.ReplicaRow]:
        with self.store.read() as conn:
            return service_store.list_replicas(conn)

    def _scale(self, n: int) -> float:
        with self.store.begin() as conn:
            service_store.update_desired(conn, service_store.get(conn, "bench"), replica_count=n)
        return time.monotonic()

    def _ready(self) -> bool:
        """A ready replica row? Read on a plain sqlite3 connection: ~30 us of this process's time per look,
        where a SQLAlchemy read every 2 ms took a good share of the interpreter from the reconciler's threads."""
        return self.watch.execute("SELECT 1 FROM replicas WHERE state = 'ready' LIMIT 1").fetchone() is not None

    def round(self) -> float:
        t0 = self._scale(1)
        while not self._ready():
            if time.monotonic() - t0 > 120:
                raise TimeoutError(f"{self.kind}: no ready replica after 120 s")
            time.sleep(0.002)
        took = time.monotonic() - t0
        self._scale(0)
        while self._replicas():
            time.sleep(0.05)
        return took

    def close(self) -> None:
        self.rec.stop_event.set()
        self.thread.join(30)
        self.rec.stop()
        for info in self.runtime.list():
            self.runtime.stop(info.service, info.replica, 1.0)
        self.runtime.close()
        self.watch.close()
        self.store.dispose()


def measure(label: str, kind: str, spec: ServiceSpec, app: Callable[[Path], str] | None,
            rounds: int) -> tuple[list[float], list[float], list[float]]:
    """(alone times, platform times, platform times without the store wake-up); alone and the last are empty
    when ``app`` is None."""
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-bench-startup-"))
    tmp.chmod(0o755)  # the sandboxed replica (nobody under root) reads the app dir
    app_dir = None
    if kind == "local":
        app_dir = tmp / "app"
        (app_dir / "www").mkdir(parents=True)
        (app_dir / "www" / "healthz").write_text("ok\n")
        shutil.copy(APP, app_dir / "app.py")
    platform = Platform(kind, spec, app_dir, tmp)
    polled = None  # the same with the timed poll only (reconciler/wake.py off): what the wake-up saves
    if app is not None:
        (tmp / "poll").mkdir()
        polled = Platform(kind, spec, app_dir, tmp / "poll", store_wake=False)
    solo: list[float] = []
    plat: list[float] = []
    poll: list[float] = []
    try:
        for _ in range(rounds):
            if app is not None and app_dir is not None:
                solo.append(alone(app(app_dir), app_dir))
            plat.append(platform.round())
            if polled is not None:
                poll.append(polled.round())
    finally:
        platform.close()
        if polled is not None:
            polled.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(_row(label, solo, plat, poll), flush=True)
    return solo, plat, poll


def _row(label: str, solo: list[float], plat: list[float], poll: list[float]) -> str:
    p = statistics.median(plat)
    if not solo:
        return (f"{label:34} {'-':>8} {p:9.3f} {'-':>9} {'-':>10}  (platform min {min(plat):.3f}, "
                f"max {max(plat):.3f})")
    a, q = statistics.median(solo), statistics.median(poll)
    verdict = "met" if p - a <= TARGET_S else "NOT met"
    return (f"{label:34} {a:8.3f} {p:9.3f} {p - a:+9.3f} {q - a:+10.3f}  {verdict} (platform min "
            f"{min(plat):.3f}, max {max(plat):.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-docker", action="store_true", help="skip busybox on Docker")
    add_options(ap)
    args = ap.parse_args()
    if args.root:
        alternate(args.root, args.runs, [__file__, "--rounds", str(args.rounds)] + ["--no-docker"] * args.no_docker)
        return
    print(f"arkserve from {Path(arkserve.__file__).parent}", flush=True)
    py_cmd = f"exec {sys.executable} app.py"
    bb_cmd = "exec busybox httpd -f -p 127.0.0.1:$PORT -h www"
    print(f"{'app (runtime), medians in s':34} {'alone':>8} {'platform':>9} {'overhead':>9} {'poll only':>10}  "
          f"target: overhead <= {TARGET_S} s")
    measure("python http.server (local)", "local", ServiceSpec(image="-", port=8000, command=py_cmd),
            lambda _d: py_cmd, args.rounds)
    measure("busybox httpd (local)", "local", ServiceSpec(image="-", port=8000, command=bb_cmd),
            lambda _d: bb_cmd, args.rounds)
    if not args.no_docker and _docker_ready():
        measure("busybox httpd (docker)", "docker", ServiceSpec(image=BUSYBOX, port=8000, command=BB_SERVE), None,
                args.rounds)
    else:
        print("docker: skipped (--no-docker, or no daemon or test image)")


if __name__ == "__main__":
    main()
