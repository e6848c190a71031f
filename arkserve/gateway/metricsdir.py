"""The directory where a multi-worker gateway's workers leave their metrics for the admin port to merge.

Its name carries the gateway's pid (``arkserve-gateway-metrics-pid<PID>-<random>``). A gateway killed with
SIGKILL cannot remove its own, so each gateway removes, at start, the directories of gateways whose process
is gone (and, of the older unnamed kind, those untouched for a day).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "arkserve-gateway-metrics-"
OLD_AFTER_S = 86400.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _stale(path: Path, now: float) -> bool:
    rest = path.name[len(PREFIX):]
    if rest.startswith("pid"):
        pid = rest[3:].split("-", 1)[0]
        return pid.isdigit() and not _alive(int(pid))
    return now - path.stat().st_mtime > OLD_AFTER_S  # from before the pid was in the name


def clean_stale(tmp: Path) -> list[Path]:
    """Remove this user's metrics directories of gateways that are gone; return them."""
    removed, now = [], time.time()
    for path in tmp.glob(PREFIX + "*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid() and _stale(path, now):
                shutil.rmtree(path)
                removed.append(path)
    return removed


def make_metrics_dir(tmp: Path | None = None) -> Path:
    base = tmp or Path(tempfile.gettempdir())
    clean_stale(base)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}pid{os.getpid()}-", dir=base))
