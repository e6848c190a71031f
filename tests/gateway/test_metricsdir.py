"""A gateway removes the metrics directories that gateways killed before it left behind, and only those."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from arkserve.gateway.metricsdir import PREFIX, make_metrics_dir


def test_stale_metrics_dirs_are_removed_at_start(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process (as after a SIGKILL of `up`)
    dead = tmp_path / f"{PREFIX}pid{gone.pid}-abc123"
    live = tmp_path / f"{PREFIX}pid{os.getpid()}-def456"  # a gateway still running
    old = tmp_path / f"{PREFIX}x1y2z3"  # the unnamed kind, untouched for two days
    recent_old = tmp_path / f"{PREFIX}q9w8e7"
    other = tmp_path / "arkserve-other"
    for d in (dead, live, old, recent_old, other):
        d.mkdir()
        (d / "worker-1.json").write_text("{}")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    made = make_metrics_dir(tmp_path)
    assert made.name.startswith(f"{PREFIX}pid{os.getpid()}-") and made.is_dir()
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {live.name, recent_old.name, other.name, made.name}
