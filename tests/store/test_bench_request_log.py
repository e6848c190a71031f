"""`bench/request_log.py` keeps working: a short run stores every row it hands the real writer, on SQLite and on
PostgreSQL, and prints a CPU figure per store. It checks the benchmark, not the speed: the figures of so short a run
are noise (the measured ones are in docs/benchmarks.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests import pg
from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(sqlite|postgresql)\s+(-?[\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+(\d+)$", re.M)  # short runs: noise


def test_the_request_log_benchmark_stores_every_row_on_both_stores() -> None:
    if pg.find_bin() is None:
        unavailable("ARKSERVE_REQUIRE_POSTGRES", pg.NOT_INSTALLED)
    out = subprocess.run([sys.executable, str(ROOT / "bench/request_log.py"), "--batches", "20", "--rounds", "2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {m[0]: m[1:] for m in ROW.findall(out.stdout)}
    assert set(rows) == {"sqlite", "postgresql"}, out.stdout
    for name, (*_, stored) in rows.items():
        assert int(stored) == 2 * 20 * 1000, (name, out.stdout)  # every row of both rounds, none of the empty ones
