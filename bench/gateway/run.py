"""Gateway benchmark: arkserve gateway vs nginx as reverse proxy, same upstream, same wrk runs.

One command: ``.venv/bin/python bench/gateway/run.py`` (needs Debian ``nginx-light`` and ``wrk``).
Starts an nginx upstream serving a fixed response, an nginx reverse proxy (2 workers, keep-alive
upstream) and the arkserve gateway (2 workers, auth on, pre-signed requests), then prints req/s,
p50, p99, the slowest request (``max``: a stalled event loop shows here first) and the gateway/nginx ratio for
GET and a 100 KB POST, and the p50 latency each proxy
adds at concurrency 1. ``cpu us/req`` is the CPU time (user + system, from ``/proc``) the proxy's
own processes spent per request in that round, the gateway's request-log writers included: the upstream and wrk
are not in it. ``--tls``: both
proxies terminate TLS with the same certificate (the upstream stays plain HTTP); wrk keeps its
connections, so this measures encryption, not handshakes. The gateway logs every request to a SQLite store
in the run's temporary folder, as ``arkserve gateway`` does (``--request-log none``: records dropped instead,
as this benchmark did before 2026-12-02).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "bench" / "gateway")]

from gateway_proc import AK, SK  # noqa: E402

from arkserve.auth.signing import content_hash, sign_headers  # noqa: E402
from arkserve.gateway import fast  # noqa: E402
from arkserve.tls import TlsFiles, ensure_local_ca  # noqa: E402

NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {dir}/{name}.pid;
error_log {dir}/{name}.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  keepalive_requests 1000000;
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} reuseport{tls};
    location / {{ {body} }}
  }}
}}
"""
UPSTREAM_BODY = 'default_type application/json; return 200 \'{"replica":"r0","ok":true}\';'
PROXY_BODY = 'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports, chosen while all are held: two picked one after the other can be the same,
    and nginx (``reuseport``) and the gateways would then share it without an error."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port: int, timeout: float = 10) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def start_nginx(tmp: Path, name: str, port: int, body: str, upstream: int, workers: int,
                tls: TlsFiles | None = None) -> subprocess.Popen[bytes]:
    conf = tmp / f"{name}.conf"
    tls_conf = "" if tls is None else (f" ssl; ssl_certificate {tls.cert}; ssl_certificate_key {tls.key}; "
                                       "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m")
    conf.write_text(NGINX_CONF.format(workers=workers, dir=tmp, name=name, port=port, body=body,
                                      upstream=upstream, tls=tls_conf))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 15) -> None:
    """SIGTERM to all, then wait for each (SIGKILL past ``timeout_s``)."""
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()


def lua_script(tmp: Path, name: str, method: str, host: str, body: bytes | None, signed_payload: bool,
               distinct: int = 0) -> Path:
    """A wrk script for one case; ``distinct`` > 0: that many GETs, each with its own path and
    signature, sent in turn (what clients that sign every request anew look like to the gateway)."""
    path = tmp / f"{name}.lua"
    if distinct:
        lines = ["local raw = {"]
        for i in range(distinct):
            url = f"/v1/predict?n={i}"
            h = sign_headers(method="GET", url=url, host=host, access_key=AK, secret_key=SK, body=b"",
                             now=time.time())
            lines.append(f'  {{"{url}", "{h["date"]}", "{h["x-ark-content-sha256"]}", "{h["Authorization"]}"}},')
        lines += ["}", "local reqs, i = {}, 0", "function init(args)",
                  "  for n, r in ipairs(raw) do",
                  f'    reqs[n] = wrk.format("GET", r[1], {{["Host"] = "{host}", ["date"] = r[2], '
                  '["x-ark-content-sha256"] = r[3], ["Authorization"] = r[4]})',
                  "  end", "end",
                  "function request() i = i % #reqs + 1; return reqs[i] end"]
        path.write_text("\n".join(lines) + "\n")
        return path
    headers: dict[str, str] = {}
    if body is not None or method == "GET":
        h = sign_headers(method=method, url="/v1/predict", host=host, access_key=AK, secret_key=SK,
                         body=(body or b"") if signed_payload else None, now=time.time())
        headers.update(h)
    lines = [f'wrk.method = "{method}"', 'wrk.path = "/v1/predict"']
    for k, v in headers.items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    if body:
        (tmp / f"{name}.body").write_bytes(body)
        lines.append(f'local f = io.open("{tmp}/{name}.body", "rb"); wrk.body = f:read("*all"); f:close()')
        lines.append('wrk.headers["Content-Type"] = "application/octet-stream"')
    path.write_text("\n".join(lines) + "\n")
    return path


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants: nginx's workers; the gateway's workers and each one's request-log
    writer (started with the first batch, so call this after a warm-up)."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(d for k in kids for d in tree(int(k)))]


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes so far (``/proc/PID/stat``)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def parse_wrk(out: str) -> dict[str, float]:
    def ms(pattern: str) -> float:
        m = re.search(pattern, out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    def lat(label: str) -> float:
        return ms(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": lat("50"), "p99": lat("99"),
            "max": ms(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s"),
            "non2xx": float(non2xx.group(1)) if non2xx else 0.0, "errors": 1.0 if errors else 0.0}


def median(runs: list[dict[str, float]], key: Callable[[dict[str, float]], float]) -> dict[str, float]:
    return sorted(runs, key=key)[len(runs) // 2]


def wrk(port: int, script: Path, threads: int, conns: int, secs: int, scheme: str = "http") -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency", "-s", str(script),
                          f"{scheme}://127.0.0.1:{port}/v1/predict"], capture_output=True, text=True,
                         check=True).stdout
    return parse_wrk(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency-seconds", type=int, default=5, help="length of each concurrency-1 run")
    ap.add_argument("--tls", action="store_true", help="both proxies terminate TLS (the same certificate)")
    ap.add_argument("--request-log", choices=("store", "none"), default="store",
                    help="the gateway's request log: a SQLite store (default, as deployed) or none")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-bench-"))
    tls = ensure_local_ca(tmp, "localhost") if a.tls else None
    scheme = "https" if tls else "http"
    tls_args = [] if tls is None else ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]
    log_args = ["--request-log", f"sqlite:///{tmp}/requests.db"] if a.request_log == "store" else []
    up, ng, gw = free_ports(3)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start_nginx(tmp, "upstream", up, UPSTREAM_BODY, up, 1))
        procs.append(start_nginx(tmp, "proxy", ng, PROXY_BODY, up, a.workers, tls))
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "bench/gateway/gateway_proc.py"), "--port",
                                       str(gw), "--upstream", str(up), "--workers", str(a.workers), *tls_args,
                                       *log_args],
                                      env={**os.environ, "PYTHONPATH": str(ROOT)}))
        wait_port(gw)
        time.sleep(0.5)  # the gateway's workers are forked after the port opens
        roots = {"nginx": procs[1].pid, "arkserve": procs[2].pid}
        body = os.urandom(100 * 1024)
        cases = [("GET", None, True, 0), ("GET, each signed anew", None, True, 5000),
                 ("POST 100KB signed payload", body, True, 0), ("POST 100KB unsigned payload", body, False, 0)]
        print(f"wrk -t{a.threads} -c{a.connections} -d{a.duration}s x {a.rounds} interleaved rounds (median); "
              f"{os.cpu_count()} cores; {a.workers} workers each; auth on; {'TLS' if tls else 'plain HTTP'}; "
              f"body sha256 {content_hash(body)[:12]}...; gateway hot path {fast.MODE}; request log {a.request_log}")
        print(f"{'case':30} {'target':8} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non2xx':>7} "
              f"{'cpu us/req':>10}  ratio")
        for label, b, signed, distinct in cases:
            method = "GET" if b is None else "POST"
            runs: dict[str, list[dict[str, float]]] = {"nginx": [], "arkserve": []}
            scripts = {t: lua_script(tmp, f"{t}{len(label)}{signed}", method, f"127.0.0.1:{p}", b, signed, distinct)
                       for t, p in (("nginx", ng), ("arkserve", gw))}
            for _ in range(a.rounds):  # interleaved rounds: the box is shared, so noise hits both alike
                for target, port in (("nginx", ng), ("arkserve", gw)):
                    wrk(port, scripts[target], a.threads, a.connections, 1, scheme)  # warm up
                    pids = tree(roots[target])
                    c0 = cpu_seconds(pids)
                    r = wrk(port, scripts[target], a.threads, a.connections, a.duration, scheme)
                    r["cpu_us"] = (cpu_seconds(pids) - c0) / max(r["rps"] * a.duration, 1) * 1e6
                    runs[target].append(r)
            med = {t: median(r, key=lambda x: x["rps"]) for t, r in runs.items()}
            ratio = med["arkserve"]["rps"] / med["nginx"]["rps"] if med["nginx"]["rps"] else 0.0
            for target in ("nginx", "arkserve"):
                r = med[target]
                print(f"{label:30} {target:8} {r['rps']:>10.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r['max']:>8.2f} "
                      f"{int(sum(x['non2xx'] for x in runs[target])):>7} {r['cpu_us']:>10.1f}"
                      + (f"  {ratio:.2f}x" if target == "arkserve" else ""))
            if any(x["non2xx"] for r in runs.values() for x in r):
                print(f"{'':30} !! non-2xx answers: the {label!r} numbers measure errors, not proxying")
        print("latency at concurrency 1 (GET, p50):")
        secs = a.latency_seconds
        base = wrk(up, lua_script(tmp, "direct", "GET", f"127.0.0.1:{up}", None, True), 1, 1, secs)
        for target, port in (("nginx", ng), ("arkserve", gw)):
            r = wrk(port, lua_script(tmp, f"c1{target}", "GET", f"127.0.0.1:{port}", None, True), 1, 1, secs, scheme)
            print(f"  {target:8} p50 {r['p50']:.3f} ms, added {r['p50'] - base['p50']:.3f} ms "
                  f"(direct {base['p50']:.3f} ms)")
    finally:
        stop(procs)
    if log_args:  # the workers flushed their sinks on the way out
        with sqlite3.connect(tmp / "requests.db") as db:
            print(f"request log: {db.execute('select count(*) from request_log').fetchone()[0]} rows stored")


if __name__ == "__main__":
    main()
