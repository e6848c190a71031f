"""`bench/gateway/inproc.py` keeps working: it drives the real protocols, so a change to their
interfaces that forgets the benchmark fails here rather than at the next performance check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_inproc_benchmark_proxies_every_case() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench/gateway/inproc.py"), "-n", "200"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    times = dict(re.findall(r"^(.+?)\s+([\d.]+) us/request", res.stdout, re.M))
    assert set(times) == {"GET, auth on", "GET, auth off", "GET, auth on, new", "GET, auth off, new",
                          "POST 100KB signed"}
    assert float(times["POST 100KB signed"]) > float(times["GET, auth on"]) > 0  # it hashed 100 KB
