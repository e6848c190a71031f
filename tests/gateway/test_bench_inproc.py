"""`bench/gateway/inproc.py` keeps working: it drives the real protocols, so a change to their
interfaces that forgets the benchmark fails here rather than at the next performance check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from arkserve.gateway import fast

ROOT = Path(__file__).resolve().parents[2]


def test_inproc_benchmark_proxies_every_case() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench/gateway/inproc.py"), "-n", "200"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    times = dict(re.findall(r"^(.+?)\s+([\d.]+) us/request", res.stdout, re.M))
    assert set(times) == {"GET, auth on", "GET, auth off", "GET, auth on, new", "GET, auth off, new",
                          "POST 100KB signed"}
    assert float(times["POST 100KB signed"]) > float(times["GET, auth on"]) > 0  # it hashed 100 KB
    # it says which hot path it measured: the compiled one when that is built and current (fast.py)
    assert f"hot path {'compiled' if fast.state() == 'compiled' else 'pure Python'}" in res.stdout


def test_inproc_benchmark_pure_flag_measures_the_sources() -> None:
    """``--pure`` measures the Python modules even with the compiled build beside them (pure vs compiled in one
    sitting); CI's second gateway run has that build."""
    res = subprocess.run([sys.executable, str(ROOT / "bench/gateway/inproc.py"), "-n", "50", "--pure"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "hot path pure Python" in res.stdout
