"""The control plane's API at scale: create N services (0 replicas) through the real API, then list them.

Starts ``arkserve init`` and ``arkserve api`` (alone: no reconciler, no gateway) on 127.0.0.1 over a
SQLite store in a temp dir (``--postgres``: a fresh database on a throwaway PostgreSQL server, or on the
server at ``--postgres URL``), creates N services one after another with the SDK (signed, as any client),
and measures, from the client:
- create latency, p50/p99 of the first and of the last 1 000 creates (or tenth, for small N);
- ``GET /api/v1/services?limit=100`` latency p50/p99 (the first page, and pages deep in the list
  through their cursors) and the size of one page;
- the API process's own CPU time per create and per list request (from /proc: robust to a busy box);
- ``arkserve service list`` (the first page, the whole process: interpreter start included) and
  ``arkserve service list --all`` (every page), wall time;
then prints a Markdown table (docs/benchmarks.md holds the last run).

    .venv/bin/python bench/controlplane_api.py [--services 10000] [--list-rounds 200] [--postgres [URL]]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import pg  # a throwaway PostgreSQL server for --postgres

BIN = Path(sys.executable).parent / "arkserve"
SPEC = {"port": 8000, "command": "true", "replicas": 0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"{_pct(values, 50) * 1000:.1f} / {_pct(values, 99) * 1000:.1f} ms"


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"arkserve api exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"arkserve api did not answer on {url} within {timeout:g}s")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used: the server's own cost, whatever else the box runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cli(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one ``arkserve service list`` process."""
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run([str(BIN), "service", "list", *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


def run(n: int, list_rounds: int, tmp: Path, database_url: str = "") -> list[tuple[str, str]]:
    load_before = os.getloadavg()[0]
    port = _free_port()
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "ARKSERVE_API_PORT": str(port),
           "ARKSERVE_GATEWAY_PORT_BASE": "20001", "ARKSERVE_LOG_LEVEL": "warning"}
    if database_url:
        env["ARKSERVE_DATABASE_URL"] = database_url
    out = subprocess.run([str(BIN), "init", "--data-dir", str(tmp / "data")], env=env, check=True,
                         capture_output=True, text=True).stdout
    found = re.search(r"access key: (\S+)\s+secret key: (\S+)", out)
    if not found:
        raise SystemExit(f"arkserve init printed no key:\n{out}")
    ak, sk = found.groups()
    url = f"http://127.0.0.1:{port}"
    api = subprocess.Popen([str(BIN), "api", "--data-dir", str(tmp / "data"), "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=open(tmp / "api.log", "wb"))  # noqa: SIM115
    try:
        _wait_up(url, api)
        app = tmp / "app"
        app.mkdir()
        creates: list[float] = []
        cpu0 = _cpu_s(api.pid)
        with Client(url, ak, sk) as c:
            for i in range(n):
                t0 = time.monotonic()
                c.post("/services", {**SPEC, "name": f"svc-{i:05d}", "image": str(app)})
                creates.append(time.monotonic() - t0)
                if (i + 1) % 1000 == 0:
                    print(f"  {i + 1} created; last 1000: {_ms(creates[-1000:])}", file=sys.stderr)
            create_cpu = (_cpu_s(api.pid) - cpu0) / max(1, n)
            tail = min(1000, max(1, n // 10))
            first_pages: list[float] = []
            deep_pages: list[float] = []
            size = 0
            with httpx.Client(base_url=f"{url}/api/v1", auth=ArkAuth(ak, sk)) as http:
                cpu0 = _cpu_s(api.pid)
                for _ in range(list_rounds):
                    t0 = time.monotonic()
                    resp = http.get("/services", params={"limit": 100})
                    first_pages.append(time.monotonic() - t0)
                    resp.raise_for_status()
                    size = len(resp.content)
                    total = resp.headers["X-Total-Count"]
                list_cpu = (_cpu_s(api.pid) - cpu0) / list_rounds
                cursor = resp.headers.get("X-Next-Cursor")
                while cursor and len(deep_pages) < list_rounds:  # walk the list: every page costs the same
                    t0 = time.monotonic()
                    resp = http.get("/services", params={"limit": 100, "cursor": cursor})
                    deep_pages.append(time.monotonic() - t0)
                    resp.raise_for_status()
                    cursor = resp.headers.get("X-Next-Cursor")
        cli_env = {**env, "ARKSERVE_ENDPOINT": url, "ARKSERVE_ACCESS_KEY": ak, "ARKSERVE_SECRET_KEY": sk}
        cli_first = [_cli(cli_env) for _ in range(3)]
        cli_all = _cli(cli_env, "--all", "--limit", "1000")
    finally:
        api.terminate()
        api.wait(timeout=30)
    return [
        ("store", "PostgreSQL" if database_url else "SQLite"),
        ("services created (0 replicas)", f"{n} (X-Total-Count {total})"),
        ("load average (1 min) before / after, 2 cores", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"),
        (f"create p50 / p99, first {tail}", _ms(creates[:tail])),
        (f"create p50 / p99, last {tail}", _ms(creates[-tail:])),
        ("create: API server CPU per request (mean)", f"{create_cpu * 1000:.1f} ms"),
        (f"`GET /services?limit=100` p50 / p99, first page, {list_rounds} requests", _ms(first_pages)),
        ("`GET /services?limit=100`: API server CPU per request (mean)", f"{list_cpu * 1000:.1f} ms"),
        (f"`GET /services?limit=100&cursor=…` p50 / p99, the next {len(deep_pages)} pages",
         _ms(deep_pages) if deep_pages else "-"),
        ("one page of 100, body size", f"{size / 1024:.1f} KiB"),
        ("`arkserve service list` (first page, process start included), median of 3: wall / CPU",
         f"{statistics.median(w for w, _ in cli_first):.2f} s / {statistics.median(c for _, c in cli_first):.2f} s"),
        ("`arkserve service list --all --limit 1000` (every service): wall / CPU",
         f"{cli_all[0]:.2f} s / {cli_all[1]:.2f} s"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--list-rounds", type=int, default=200, help="GET /services?limit=100 requests to time")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (store, api.log)")
    ap.add_argument("--postgres", nargs="?", const=pg.THROWAWAY, metavar="URL",
                    help="a PostgreSQL store: a server started for the run, or a database made on the server at "
                         "URL (an admin URL that may CREATE DATABASE)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-bench-cp-"))
    try:
        with pg.admin_url_for(args.postgres) as admin:
            rows = run(args.services, args.list_rounds, tmp, pg.fresh_database(admin) if admin else "")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("| what | value |\n|---|---:|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
