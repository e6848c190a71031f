"""Autoscaling on the whole platform: scale from zero under a burst, and a load ramp up and down.

Runs ``arkserve up`` (api, 2 gateway workers, reconciler; local runtime, SQLite) in a temp dir, with the app
``tests/e2e/coldstart_app.py`` (it sleeps ``--start-delay`` seconds before it listens, like a model loading).

*Cold start*: a service autoscaled with ``min=0`` sits at 0 replicas; ``--burst`` concurrent signed requests (each
on its own connection, TLS) arrive at once. Reported: how many succeeded, the time to the first and the last
response, and where the time went (the wake reaching the autoscaler, the replica's start, its readiness, the
gateways routing to it), from the service's events and replica rows. The app alone (its process spawned directly,
timed until it accepts a TCP connection) is timed in the same run. ``--rounds`` rounds, every second one with its
connections opened beforehand (an unsigned request, refused with 401 without waking anything: this takes the load
generator's own TLS handshakes out of the time); between rounds the service idles back to zero (``idle_to_zero_s``
3 s).

*Ramp*: ``--ramp-low`` → ``--ramp-high`` → ``--ramp-low`` concurrent clients over ``--ramp-s`` seconds (linear up,
then down), each sending requests back to back to an app that takes ``--delay`` s per request; reported: requests,
failures, the largest replica count, and the autoscaler's decisions.

    .venv/bin/python bench/coldstart.py [--burst 200] [--start-delay 2] [--rounds 3] [--ramp-s 180]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import Client
from arkserve.sdk.profiles import load_all

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "e2e" / "coldstart_app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Up:
    """``arkserve up`` in a temp dir, on loopback."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.app_dir = tmp, tmp / "app"
        self.app_dir.mkdir()
        shutil.copy(APP, self.app_dir / "app.py")
        self.env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "PYTHONUNBUFFERED": "1",
                    "ARKSERVE_GATEWAY_WORKERS": "2", "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port())}
        self.env.pop("ARKSERVE_MASTER_KEY", None)
        self.log = tmp / "up.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "arkserve", "up", "--data-dir", str(tmp / "data"), "--api-port",
                 str(free_port()), "--gateway-port-base", str(free_port() // 100 * 100 % 20000 + 30000)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while b"Press Ctrl-C to stop." not in self.log.read_bytes():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("arkserve up failed:\n" + self.log.read_text())
            time.sleep(0.1)
        p = load_all(tmp / "profiles.yaml")["default"]
        self.endpoint, self.ak, self.sk = p.endpoint, p.access_key, p.secret_key
        self.ca = ssl.create_default_context(cafile=str(tmp / "data" / "tls" / "ca.pem"))

    def client(self) -> Client:
        return Client(self.endpoint, self.ak, self.sk)

    def create(self, name: str, replicas: int, autoscale: dict[str, Any], **env: str) -> dict[str, Any]:
        with self.client() as c:
            c.post("/services", {"name": name, "image": str(self.app_dir), "port": 8000, "health_path": "/healthz",
                                 "command": f"{sys.executable} app.py", "replicas": replicas, "env": env,
                                 "autoscale": autoscale})
        return self.wait(name, lambda s: s["ready"] == replicas == len(s["instances"])
                         and s["status"] in ("ready", "stopped"))

    def wait(self, name: str, what: Any, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                svc: dict[str, Any] = c.get(f"/services/{name}")
                if what(svc):
                    return svc
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out waiting on {name}: {svc}")
                time.sleep(0.1)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.client() as c:
            return list(c.get(f"/services/{name}/events", limit=5000))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def app_alone(start_delay: float) -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(APP)], env={**os.environ, "PORT": str(port),
                                                              "START_DELAY_S": str(start_delay)})
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return time.perf_counter() - t0
            except OSError:
                time.sleep(0.001)
    finally:
        proc.terminate()
        proc.wait()


async def burst(up: Up, url: str, n: int, warm: bool) -> tuple[Counter[int], list[float], list[str]]:
    auth = ArkAuth(up.ak, up.sk)
    statuses: Counter[int] = Counter()
    times: list[float] = []
    errors: list[str] = []
    clients = [httpx.AsyncClient(verify=up.ca, auth=auth, timeout=180) for _ in range(n)]
    if warm:  # connect first: an unsigned request is answered 401 by the gateway and wakes nothing
        refused = await asyncio.gather(*(c.get(url, auth=None) for c in clients))
        assert {r.status_code for r in refused} == {401}, {r.status_code for r in refused}
    t0 = time.perf_counter()

    async def one(c: httpx.AsyncClient) -> None:
        try:
            r = await c.get(url)
            statuses[r.status_code] += 1
            if r.status_code != 200:
                errors.append(r.text[:200])
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        times.append(time.perf_counter() - t0)

    try:
        await asyncio.gather(*(one(c) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return statuses, sorted(times), errors


def cold_rounds(up: Up, args: argparse.Namespace) -> None:
    svc = up.create("cold", 0, {"min": 0, "max": 4, "target": 50, "stable_window_s": 2, "panic_window_s": 1,
                                "scale_in_delay_s": 1, "idle_to_zero_s": 3, "cold_start_timeout_s": 120},
                    START_DELAY_S=str(args.start_delay))
    alone = [app_alone(args.start_delay) for _ in range(args.rounds)]
    print(f"app alone (start delay {args.start_delay} s): median {statistics.median(alone):.3f} s "
          f"({', '.join(f'{a:.3f}' for a in alone)})")
    for i in range(args.rounds):
        up.wait("cold", lambda s: s["replicas"] == 0 and not s["instances"])
        time.sleep(1.0)  # the gateways have loaded the 0-replica route
        wall0 = time.time()
        warm = bool(args.warm) and i % 2 == 1  # alternate: new connections, then connections already open
        statuses, times, errors = asyncio.run(burst(up, svc["endpoint"] + "/", args.burst, warm))
        ok = statuses[200]
        evs = [e for e in up.events("cold") if e["time"] >= wall0]
        woke = next((e["time"] for e in evs if e["kind"] == "autoscaled" and "0→" in e["message"]), None)
        started = next((e["time"] for e in evs if e["kind"] == "started"), None)
        with up.client() as c:
            inst = c.get("/services/cold")["instances"]
            deadline = time.monotonic() + 5
            while len(reqs := c.get("/services/cold/requests", since=str(wall0), limit=10000)) < ok and \
                    time.monotonic() < deadline:  # the request log is written in batches every 0.5 s
                time.sleep(0.2)
        ready = min((x["ready_at"] for x in inst if x["ready_at"]), default=None)
        arrived = min((r["time"] for r in reqs), default=None)  # the first request's head at a gateway
        parts = []
        if woke and started and ready and arrived and not warm:  # (open connections: the log's first time is late)
            first_resp = wall0 + times[0]
            parts = [f"first request at a gateway {arrived - wall0:.3f}", f"→ autoscaled {woke - arrived:.3f}",
                     f"→ started {started - woke:.3f}", f"→ ready {ready - started:.3f}",
                     f"→ first response {first_resp - ready:.3f}"]
        how = "open connections" if warm else "new connections"
        print(f"round {i + 1} ({how}): {ok}/{args.burst} ok {dict(statuses)}; first response {times[0]:.3f} s, "
              f"last {times[-1]:.3f} s, p50 {statistics.median(times):.3f} s; {'; '.join(parts)}"
              + (f"; errors {errors[:3]}" if errors else ""))


async def ramp(up: Up, url: str, args: argparse.Namespace) -> tuple[Counter[int], list[str], int]:
    auth = ArkAuth(up.ak, up.sk)
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    span, low, high = float(args.ramp_s), int(args.ramp_low), int(args.ramp_high)
    half = span / 2
    t0 = time.monotonic()

    def wanted(t: float) -> int:
        f = t / half if t < half else max(0.0, (span - t) / half)
        return round(low + (high - low) * f)

    async def worker(i: int) -> None:
        async with httpx.AsyncClient(verify=up.ca, auth=auth, timeout=120) as c:
            while (t := time.monotonic() - t0) < args.ramp_s:
                if i >= wanted(t):
                    await asyncio.sleep(0.2)
                    continue
                try:
                    r = await c.get(url)
                    statuses[r.status_code] += 1
                    if r.status_code != 200:
                        errors.append(r.text[:200])
                except httpx.HTTPError as exc:
                    statuses[0] += 1  # no response at all
                    errors.append(f"{type(exc).__name__}: {exc}")

    async def watch() -> int:
        most = 0
        while time.monotonic() - t0 < args.ramp_s:
            with up.client() as c:
                svc: dict[str, Any] = await asyncio.to_thread(c.get, "/services/ramp")
            most = max(most, int(svc["replicas"]))
            await asyncio.sleep(2)
        return most

    watching = asyncio.create_task(watch())
    await asyncio.gather(*(worker(i) for i in range(args.ramp_high)))
    return statuses, errors, await watching


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--start-delay", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="every round opens its connections with the burst (default: every second round has them "
                         "open already, which takes the load generator's own TLS handshakes out of the time)")
    ap.add_argument("--ramp-s", type=float, default=180.0, help="0: no ramp")
    ap.add_argument("--ramp-low", type=int, default=10)
    ap.add_argument("--ramp-high", type=int, default=200)
    ap.add_argument("--delay", type=float, default=1.0, help="seconds per request in the ramp")
    ap.add_argument("--target", type=float, default=25.0, help="the ramp service's target")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ark-coldstart-"))
    up = Up(tmp)
    try:
        if args.rounds:
            cold_rounds(up, args)
        if args.ramp_s:
            svc = up.create("ramp", 1, {"min": 1, "max": 10, "target": args.target, "stable_window_s": 20,
                                        "panic_window_s": 4, "scale_in_delay_s": 15}, DELAY_S=str(args.delay))
            statuses, errors, most = asyncio.run(ramp(up, svc["endpoint"] + "/", args))
            time.sleep(1)
            decisions = [e["message"] for e in up.events("ramp") if e["kind"] == "autoscaled"]
            failed = sum(n for s, n in statuses.items() if s != 200)  # 0: no response
            print(f"ramp {args.ramp_low}→{args.ramp_high}→{args.ramp_low} over {args.ramp_s:g} s: "
                  f"{sum(statuses.values())} responses {dict(statuses)}, failed {failed}, most replicas {most}"
                  + (f"; errors {errors[:3]}" if errors else ""))
            for d in decisions:
                print("  ", d)
    finally:
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
