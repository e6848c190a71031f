"""`bench/gateway/run.py` keeps working end to end: nginx and the gateway both proxy every case.

A short run (one round of one second per case), so it checks the benchmark, not the speed: every
case gets 2xx answers through both proxies (a gateway refusing the pre-signed requests would show
as non-2xx), each row has its CPU figure, and each gateway row its ratio. Needs Debian ``nginx-light``
and ``wrk``; skips without them unless ``ARKSERVE_REQUIRE_BENCH_TOOLS=1`` (CI), which fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]
CASES = ("GET", "GET, each signed anew", "POST 100KB signed payload", "POST 100KB unsigned payload")
ROW = re.compile(r"^(?P<case>.+?)\s{2,}(?P<target>nginx|arkserve)\s+(?P<rps>\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+"
                 r"(?P<non2xx>\d+)\s+(?P<cpu>[\d.]+)(?:\s+(?P<ratio>[\d.]+)x)?$", re.M)


@pytest.fixture(scope="module")
def tools() -> None:
    missing = [t for t in ("nginx", "wrk") if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]
    if missing:
        unavailable("ARKSERVE_REQUIRE_BENCH_TOOLS",
                    f"{' and '.join(missing)} not installed (apt-get install nginx-light wrk)")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_gateway_benchmark_runs_every_case_through_both_proxies(tools: None, tls: bool) -> None:
    cmd = [sys.executable, str(ROOT / "bench/gateway/run.py"), "--rounds", "1", "--duration", "1",
           "--connections", "8", "--threads", "1", "--latency-seconds", "1", *(["--tls"] if tls else [])]
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert ("; TLS;" in out) is tls
    rows = {(m["case"], m["target"]): m for m in ROW.finditer(out)}
    assert set(rows) == {(c, t) for c in CASES for t in ("nginx", "arkserve")}, out
    for (case, target), m in rows.items():
        assert int(m["rps"]) > 0 and int(m["non2xx"]) == 0, f"{case} via {target}: {m[0]}"
        assert float(m["cpu"]) > 0
        assert (m["ratio"] is not None) is (target == "arkserve")
    assert "!! non-2xx" not in out
    assert re.search(r"^\s+nginx\s+p50 [\d.]+ ms, added", out, re.M)
    assert re.search(r"^\s+arkserve p50 [\d.]+ ms, added", out, re.M)
    stored = re.search(r"^request log: (\d+) rows stored$", out, re.M)  # logged as `arkserve gateway` logs
    assert stored and int(stored[1]) >= sum(int(m["rps"]) for (_, t), m in rows.items() if t == "arkserve"), out


def test_the_deployed_gateway_benchmark_proxies_through_all_three(tools: None) -> None:
    """`bench/gateway/deployed.py`: nginx, run.py's gateway and `arkserve gateway` on a real data dir all answer
    2xx, and the deployed one logs its requests to its store."""
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin"}
    res = subprocess.run([sys.executable, str(ROOT / "bench/gateway/deployed.py"), "--rounds", "1", "--duration", "1",
                          "--connections", "8"], capture_output=True, text=True, timeout=240, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {m[1]: m for m in re.finditer(r"^(nginx|run\.py's|deployed)\s+(\d+)\s+([\d.]+)x\s+[\d.]+\s+(\d+)\s+"
                                         r"([\d.]+)", res.stdout, re.M)}
    assert set(rows) == {"nginx", "run.py's", "deployed"}, res.stdout
    for name, m in rows.items():
        assert int(m[2]) > 0 and int(m[4]) == 0 and float(m[5]) > 0, f"{name}: {m[0]}"
    logged = re.search(r"^deployed request log: (\d+) rows$", res.stdout, re.M)
    assert logged and int(logged[1]) >= int(rows["deployed"][2]), res.stdout
