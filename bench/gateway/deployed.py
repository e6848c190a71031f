"""The deployed gateway beside the benchmark's: GET through nginx, ``gateway_proc.py`` (what ``run.py`` measures)
and ``arkserve gateway`` as ``arkserve up`` runs it (its own store and master key, the routing snapshot read from
the store, load reports, the request log written to the store), the same upstream, interleaved rounds.

    .venv/bin/python bench/gateway/deployed.py              # 3 rounds of 5 s
    .venv/bin/python bench/gateway/deployed.py --rounds 1 --duration 1

``run.py`` builds its gateway by hand, so it can leave out what a deployment adds; this checks that it does not
(docs/benchmarks.md, "The request log"). The platform is initialised in a temporary folder (``arkserve init``,
``arkserve api``), one service is created through the API, and its replica is written to the store as ready at
nginx's upstream, so no reconciler or runtime is involved. Needs Debian ``nginx-light`` and ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "gateway")]

import gateway_proc  # noqa: E402
import run  # noqa: E402

from arkserve.domain.services import revision  # noqa: E402
from arkserve.sdk.client import Client  # noqa: E402
from arkserve.sdk.profiles import load_all  # noqa: E402
from arkserve.store import services  # noqa: E402
from arkserve.store.db import open_store  # noqa: E402


def _platform(tmp: Path, ports: list[int]) -> tuple[dict[str, str], Client, tuple[str, str]]:
    """``arkserve init`` of a data dir in ``tmp``: the environment of its parts, a client of its admin and the
    admin's key pair."""
    data = tmp / "data"
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "ARKSERVE_DATA_DIR": str(data),
           "ARKSERVE_API_PORT": str(ports[0]), "ARKSERVE_GATEWAY_ADMIN_PORT": str(ports[1]),
           "ARKSERVE_GATEWAY_PORT_BASE": str(ports[2]), "ARKSERVE_GATEWAY_WORKERS": "2"}
    env.pop("ARKSERVE_MASTER_KEY", None)
    env.pop("ARKSERVE_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "arkserve", "init"], env=env, check=True, capture_output=True)
    env["ARKSERVE_MASTER_KEY"] = (data / "master.key").read_text().strip()
    profile = load_all(tmp / "profiles.yaml")["default"]
    return env, Client(profile.endpoint, profile.access_key, profile.secret_key), (profile.access_key,
                                                                                   profile.secret_key)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-deployed-"))
    up, bench_port, nginx_port, *platform_ports = run.free_ports(6)  # distinct: see run.free_ports
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (tmp / log).open("wb") as out:
            procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        procs.append(run.start_nginx(tmp, "upstream", up, run.UPSTREAM_BODY, up, 1))
        nginx_proc = run.start_nginx(tmp, "proxy", nginx_port, run.PROXY_BODY, up, 2)
        procs.append(nginx_proc)
        env, client, admin_key = _platform(tmp, platform_ports)
        spawn([sys.executable, "-m", "arkserve", "api"], env, "api.log")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get("/whoami")
                break
            except Exception:  # not up yet
                if time.monotonic() > deadline:
                    raise SystemExit((tmp / "api.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        (tmp / "app").mkdir()  # not the data dir's parent: an app dir may not contain it
        client.post("/services", {"name": "bench", "image": str(tmp / "app"), "port": 8000, "replicas": 1,
                                  "command": "true"})
        store = open_store(f"sqlite:///{tmp / 'data' / 'arkserve.db'}", migrate_schema=False)
        with store.begin() as conn:  # the replica a reconciler would have started, ready at nginx's upstream
            svc = services.get(conn, "bench")
            services.save_replica(conn, services.ReplicaRow("r00000bench", svc.id, revision(svc.spec), "ready",
                                                            "127.0.0.1", up, started_at=time.time(),
                                                            ready_at=time.time()), routing_changed=True)
            services.set_status(conn, svc.id, "ready", "Ready", "")
        assert svc.gateway_port is not None
        deployed = spawn([sys.executable, "-m", "arkserve", "gateway", "--plain-http"], env, "gateway.log")
        bench = spawn([sys.executable, str(ROOT / "bench/gateway/gateway_proc.py"), "--port", str(bench_port),
                       "--upstream", str(up), "--workers", "2", "--request-log", f"sqlite:///{tmp}/requests.db"],
                      {**os.environ, "PYTHONPATH": str(ROOT)}, "gateway_proc.log")
        targets = {"nginx": (nginx_port, nginx_proc), "run.py's": (bench_port, bench),
                   "deployed": (svc.gateway_port, deployed)}
        for port, _ in targets.values():
            run.wait_port(port, timeout=30)
        time.sleep(1)  # the workers fork after the port opens
        keys = {"deployed": admin_key}
        scripts = {}
        for name, (port, _) in targets.items():
            run.AK, run.SK = keys.get(name, (gateway_proc.AK, gateway_proc.SK))  # lua_script signs with these
            scripts[name] = run.lua_script(tmp, f"get-{port}", "GET", f"127.0.0.1:{port}", None, True)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        print(f"wrk -t2 -c{a.connections} -d{a.duration}s x {a.rounds} interleaved rounds; GET, auth on; "
              f"2 workers each; plain HTTP; gateway hot path {run.fast.MODE}")
        for _ in range(a.rounds):
            for name, (port, _) in targets.items():
                run.wrk(port, scripts[name], 2, a.connections, 1)  # warm up
                pids = run.tree(targets[name][1].pid)  # after the warm-up: the request-log writers are up
                c0 = run.cpu_seconds(pids)
                r = run.wrk(port, scripts[name], 2, a.connections, a.duration)
                r["cpu_us"] = (run.cpu_seconds(pids) - c0) / max(r["rps"] * a.duration, 1) * 1e6
                results[name].append(r)
        base = run.median(results["nginx"], key=lambda x: x["rps"])["rps"]
        print(f"{'gateway':10} {'req/s':>8} {'ratio':>6} {'p99 ms':>7} {'non2xx':>7} {'cpu us/req':>10}  "
              "rounds (req/s)")
        for name, runs in results.items():
            m = run.median(runs, key=lambda x: x["rps"])
            print(f"{name:10} {m['rps']:>8.0f} {m['rps'] / base:>5.2f}x {m['p99']:>7.2f} "
                  f"{int(sum(x['non2xx'] for x in runs)):>7} {m['cpu_us']:>10.1f}  "
                  + ", ".join(f"{x['rps']:.0f}" for x in runs))
    finally:
        run.stop(procs)
    with open_store(f"sqlite:///{tmp / 'data' / 'arkserve.db'}", migrate_schema=False).read() as conn:
        print(f"deployed request log: {conn.exec_driver_sql('select count(*) from request_log').scalar()} rows")


if __name__ == "__main__":
    main()
