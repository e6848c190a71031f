"""Garbage collection of the registry's storage, as Distribution's documentation requires it: with the registry
read-only (``storage.maintenance.readonly``) while ``docker-registry garbage-collect`` runs.

Run on the registry's host (``arkserve image gc``). When the registry runs as a part of ``arkserve up``,
the pass writes the read-only marker, stops the part (the supervisor starts it again, read-only), collects,
removes the marker and restarts it writable. A registry that is not running is collected directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from arkserve.errors import TemporaryError
from arkserve.registry import config
from arkserve.registry.process import binary
from arkserve.settings import Settings
from arkserve.supervisor import run_file


@dataclass(frozen=True)
class GcReport:
    bytes_before: int
    bytes_after: int
    blobs_deleted: int
    manifests_deleted: int
    output: str

    @property
    def freed_bytes(self) -> int:
        return self.bytes_before - self.bytes_after


def blob_bytes(storage: Path) -> int:
    root = storage / "docker/registry/v2/blobs"
    return sum(p.stat().st_size for p in root.rglob("data") if p.is_file()) if root.is_dir() else 0


def _registry_pid(data_dir: Path) -> int | None:
    try:
        pid = json.loads(run_file(data_dir).read_text()).get("parts", {}).get("registry")
    except (OSError, ValueError):
        return None
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _answers(settings: Settings) -> bool:
    r = settings.registry
    host = "127.0.0.1" if r.host in ("0.0.0.0", "") else r.host  # noqa: S104 - a wildcard listener, reached locally
    try:
        return httpx.get(f"http://{host}:{r.port}/v2/", timeout=1.0, trust_env=False).status_code == 401
    except httpx.HTTPError:
        return False


def _restart(settings: Settings, old_pid: int, timeout_s: float = 60.0) -> int:
    """Stop the registry part and wait until the supervisor has started it again and it answers."""
    os.kill(old_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = _registry_pid(settings.data_dir)
        if pid is not None and pid != old_pid and _answers(settings):
            return pid
        time.sleep(0.1)
    raise TemporaryError(f"the registry did not come back within {timeout_s:g} s after a restart (is `arkserve up` "
                         "still running?)", code="RegistryUnavailable")


def garbage_collect(settings: Settings, *, delete_untagged: bool = True) -> GcReport:
    path = binary(settings)
    if path is None:
        raise TemporaryError(f"no registry binary at {settings.registry.binary}", code="RegistryUnavailable")
    storage = config.storage_root(settings.data_dir)
    marker = config.readonly_marker(settings.data_dir)
    pid = _registry_pid(settings.data_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("garbage collection\n")
    try:
        if pid is not None:
            pid = _restart(settings, pid)  # read-only while collecting
        cfg = config.write(settings, readonly=True)
        before = blob_bytes(storage)
        argv = [path, "garbage-collect", *(["--delete-untagged"] if delete_untagged else []), str(cfg)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
        if done.returncode != 0:
            raise TemporaryError(f"garbage collection failed: {(done.stderr or done.stdout)[-800:]}",
                                 code="RegistryGcFailed")
        after = blob_bytes(storage)
    finally:
        marker.unlink(missing_ok=True)
        if pid is not None:
            _restart(settings, pid)
        else:
            config.write(settings)
    out = done.stdout + done.stderr
    return GcReport(before, after, out.count("blob eligible for deletion"), out.count("manifest eligible for deletion"),
                    out)
