"""`bench/controlplane_api.py` keeps working end to end: a short run (120 services: two pages) through a real
`arkserve init` + `arkserve api` and the CLI prints every row of its table, on each store. It checks the benchmark,
not the speed (docs/benchmarks.md has the 10 000-service run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg
from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("store", ["SQLite", "PostgreSQL"])
def test_the_control_plane_api_benchmark_runs(store: str) -> None:
    if store == "PostgreSQL" and pg.find_bin() is None:
        unavailable("ARKSERVE_REQUIRE_POSTGRES", pg.NOT_INSTALLED)
    out = subprocess.run([sys.executable, str(ROOT / "bench/controlplane_api.py"), "--services", "120",
                          "--list-rounds", "3", *(["--postgres"] if store == "PostgreSQL" else [])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.stdout.splitlines()[2:]]
    rows = {what: value for what, value in cells}
    assert rows["services created (0 replicas)"] == "120 (X-Total-Count 120)", rows
    assert rows["store"] == store, rows
    assert len(rows) == 12 and all(v and v != "-" for v in rows.values()), rows
