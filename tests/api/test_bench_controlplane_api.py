"""`bench/controlplane_api.py` keeps working end to end: a short run (120 services: two pages) through a real
`arkserve init` + `arkserve api` and the CLI prints every row of its table. It checks the benchmark,
not the speed (docs/benchmarks.md has the 10 000-service run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_control_plane_api_benchmark_runs() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench/controlplane_api.py"), "--services", "120",
                          "--list-rounds", "3"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.stdout.splitlines()[2:]]
    rows = {what: value for what, value in cells}
    assert rows["services created (0 replicas)"] == "120 (X-Total-Count 120)", rows
    assert len(rows) == 11 and all(v and v != "-" for v in rows.values()), rows
