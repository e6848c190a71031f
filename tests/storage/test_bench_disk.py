"""bench/disk.py keeps working: one small round (both clients where curl exists), checking the table it prints,
not the speed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench" / "disk.py"


@pytest.mark.parametrize("client", ["httpx", "curl"])
def test_bench_disk_runs(client: str, tmp_path: Path) -> None:
    if client == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed (the bench falls back to httpx)")
    out = subprocess.run([sys.executable, str(BENCH), "--mib", "8", "--rounds", "1", "--client", client,
                          "--dir", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    for row in ("| cp |", "| cp + sync |", "| upload |", "| download |", "API RSS: idle"):
        assert row in out.stdout, out.stdout
