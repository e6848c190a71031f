"""Replica start with and without a mounted model: a 1 GiB model-market version, cached on the host, costs
(almost) nothing at start; the cold fetch is paid once per host, not once per replica.

Two services side by side over a SQLite store in a temp dir: ``plain`` (no mount) and ``mounted`` (the model
at /ark/models). Each round starts a replica of one, then the other, the way the reconciler does (its
``specs.build``, which resolves the mount through the host's model cache, then ``runtime.start``), and
measures until the app accepts connections: the reconciler's probe cadence (a pass every 0.5 s) is left
out, so the difference is what the mount costs. The first ``mounted`` replica runs on a cold cache (the
fetch).

    .venv/bin/python bench/model_mount.py [--rounds 5] [--size-mib 1024] [--runtime local|docker]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from arkserve.api.mounts import resolve
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.worker import ServiceWorker, new_replica_id
from arkserve.runtimes.factory import make_runtime
from arkserve.schemas import ServiceSpec
from arkserve.storage.market import BlobStore, manifest_digest, publish_dir
from arkserve.store import instance_types
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "reconciler" / "app.py"
BUSYBOX = "arkserve-test/busybox:1"
BB_SERVE = "mkdir -p /tmp/www; echo ok > /tmp/www/healthz; exec httpd -f -p $PORT -h /tmp/www"


def _model(tmp: Path, store: Store, owner: int, size_mib: int) -> float:
    src = tmp / "weights"
    src.mkdir()
    block = os.urandom(1 << 20)
    with (src / "model.bin").open("wb") as f:
        for i in range(size_mib):
            f.write(block[:-8] + i.to_bytes(8, "big"))  # distinct MiBs, cheap to make
    t0 = time.monotonic()
    manifest = publish_dir(BlobStore(tmp), src)
    took = time.monotonic() - t0
    shutil.rmtree(src)
    with store.begin() as conn:
        m = model_store.create(conn, "big", owner, {}, True)
        model_store.add_version(conn, m.id, "1", manifest_digest(manifest), manifest)
    return took


def _start_to_listening(worker: ServiceWorker, store: Store, name: str) -> float:
    """Seconds from asking for a replica (its spec: mounts resolved through the host's model cache) to the
    app accepting connections on its port; the replica is stopped again."""
    with store.read() as conn:
        svc = service_store.get(conn, name)
    rid = new_replica_id()
    t0 = time.monotonic()
    info = worker.runtime.start(worker.specs.build(svc, rid))
    while True:
        try:
            socket.create_connection((info.host, info.port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() - t0 > 60:
                raise TimeoutError(f"{name}: replica not listening after 60 s") from None
            time.sleep(0.002)
    took = time.monotonic() - t0
    worker.runtime.stop(name, rid, 1.0)
    return took


def run(kind: str, rounds: int, size_mib: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-bench-mount-"))
    tmp.chmod(0o755)  # the app folder must be readable by the sandbox's unprivileged user
    data = tmp / "data"  # apart from the app folder (the local runtime refuses an app inside the data dir)
    store = open_store(f"sqlite:///{data}/arkserve.db")
    runtime = make_runtime(kind, data)
    if kind == "local":
        (tmp / "app").mkdir()
        shutil.copy(APP, tmp / "app" / "app.py")
        base: dict[str, Any] = {"image": str(tmp / "app"), "port": 8000, "command": f"{sys.executable} app.py"}
    else:
        base = {"image": BUSYBOX, "port": 8000, "command": BB_SERVE}
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "bench", "h", "user")
    publish_s = _model(data, store, owner.id, size_mib)
    mount = [{"source": "model", "ref": "big@1", "mount_path": "/ark/models"}]
    with store.begin() as conn:
        service_store.create(conn, "plain", owner.id, ServiceSpec(**base).model_dump(), 0, None)
        spec = resolve(conn, data, owner, ServiceSpec.model_validate({**base, "mounts": mount}).model_dump())
        service_store.create(conn, "mounted", owner.id, spec, 0, None)
    stopper = ThreadPoolExecutor(1)
    worker = ServiceWorker(store, runtime, ReconcilerConfig(), data, stopper)
    try:
        cold = _start_to_listening(worker, store, "mounted")
        plain: list[float] = []
        mounted: list[float] = []
        for _ in range(rounds):
            for name, times in (("plain", plain), ("mounted", mounted)):
                times.append(_start_to_listening(worker, store, name))
        cache = data / "model-cache"
        copies = sum(1 for d in cache.iterdir() if d.is_dir() and not d.name.startswith(".")
                     for p in d.rglob("*") if p.is_file() and p.stat().st_nlink == 1)
        print(f"runtime {kind}; model {size_mib} MiB; publish (hash + store) {publish_s:.1f} s")
        print(f"first mounted replica on a cold cache (fetch + start): {cold:.3f} s; "
              f"files copied into the cache: {copies} (the rest are hard links to the blobs)")
        print(f"{'replica':8} {'median s':>9} {'min s':>7} {'max s':>7}  rounds (start -> listening)")
        for name, t in (("plain", plain), ("mounted", mounted)):
            print(f"{name:8} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f}  {rounds}")
        print(f"mounted - plain (median): {statistics.median(mounted) - statistics.median(plain):+.3f} s")
    finally:
        stopper.shutdown()
        for info in runtime.list():
            runtime.stop(info.service, info.replica, 1.0)
        runtime.close()
        store.dispose()
        for d in (data / "model-cache").glob("*"):
            for dirpath, _, _ in os.walk(d):
                os.chmod(dirpath, 0o755)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runtime", choices=["local", "docker"], default="local")
    args = ap.parse_args()
    run(args.runtime, args.rounds, args.size_mib)


if __name__ == "__main__":
    main()
