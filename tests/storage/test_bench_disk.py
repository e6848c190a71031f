"""bench/disk.py and bench/disk_tls.py keep working: one small round (both clients where curl exists), checking
the table they print, not the speed."""

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
    for row in ("| cp |", "| cp + sync |", "| upload |", "| download |", "| cli put |", "| cli get |", "API RSS: idle"):
        assert row in out.stdout, out.stdout


def test_bench_disk_tls_runs(tmp_path: Path) -> None:
    if shutil.which("curl") is None or shutil.which("openssl") is None:
        pytest.skip("curl or openssl is not installed")
    out = subprocess.run([sys.executable, str(BENCH.with_name("disk_tls.py")), "--mib", "4", "--rounds", "1",
                          "--dir", str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    for row in ("| cp |", "| curl upload (TLS) |", "| cli put (TLS) |", "| cli get (TLS) |", "openssl speed"):
        assert row in out.stdout, out.stdout
