"""Garbage collection of the registry's storage, as Distribution's documentation requires it: with the registry
read-only (``storage.maintenance.readonly``) while ``docker-registry garbage-collect`` runs.

Run on the registry's host (``arkserve image gc``). When the registry runs as a part of ``arkserve up``,
the pass writes the read-only marker, stops the part (the supervisor starts it again, read-only), collects,
removes the marker and restarts it writable. A registry that is not running is collected directly.

The registry is reached where the running part listens (``config.running_addr``: the ``run/registry.yml`` it
wrote at its start, from ``up``'s settings), not where this shell's settings would put it: ``up`` may run
under systemd with an ``EnvironmentFile`` the shell has not got. Whatever ends the pass (an error, a timeout,
Ctrl-C, SIGTERM, SIGHUP) the marker goes and a read-only registry is restarted writable; if the pass is
killed outright, the lock it held (``run/registry.lock``) goes with it, and the registry's next start, or the
next pass, finds the marker stale and ends read-only mode.

While the registry is read-only the pass also removes the blob uploads nobody has written to for
``config.UPLOAD_MAX_AGE_H`` hours (begun, never finished: the registry itself purges them only that long after
they began), and counts their bytes as freed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
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
    uploads_removed: int = 0  # abandoned blob uploads (``purge_uploads``)
    upload_bytes: int = 0

    @property
    def freed_bytes(self) -> int:
        return self.bytes_before - self.bytes_after + self.upload_bytes


def blob_bytes(storage: Path) -> int:
    root = storage / "docker/registry/v2/blobs"
    return sum(p.stat().st_size for p in root.rglob("data") if p.is_file()) if root.is_dir() else 0


def purge_uploads(storage: Path, max_age_s: float) -> tuple[int, int]:
    """Remove the blob uploads (``repositories/**/_uploads/<id>/``) nobody has written to for ``max_age_s``:
    begun and never finished, they count against their namespace's quota. (count, bytes of their data)."""
    removed = freed = 0
    cutoff = time.time() - max_age_s
    for top, dirs, _files in os.walk(storage / "docker/registry/v2/repositories"):
        if os.path.basename(top) != "_uploads":
            dirs[:] = [d for d in dirs if d not in ("_layers", "_manifests")]  # blob links and tags: no uploads
            continue
        for upload in [Path(top, d) for d in dirs]:
            try:
                files = [upload, *upload.rglob("*")]
                last = max(f.lstat().st_mtime for f in files)
                size = (upload / "data").stat().st_size if (upload / "data").is_file() else 0
            except OSError:
                continue  # finished meanwhile
            if last < cutoff:
                shutil.rmtree(upload, ignore_errors=True)
                if not upload.exists():
                    removed, freed = removed + 1, freed + size
        dirs[:] = []
    return removed, freed


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


def _answers(host: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/v2/", timeout=1.0, trust_env=False).status_code == 401
    except httpx.HTTPError:
        return False


def _stop(pid: int) -> None:
    """SIGTERM the registry part: the supervisor of ``up`` starts it again (read-only while the marker is held)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # gone already: the supervisor is starting it again anyway
    except PermissionError:
        raise TemporaryError(f"cannot restart the registry (pid {pid}): run `arkserve image gc` as the user "
                             "arkserve runs as", code="RegistryUnavailable") from None


def _wait(settings: Settings, old_pid: int, *, readonly: bool, timeout_s: float) -> int:
    """Wait until the supervisor has started the registry again (another pid), in the wanted mode, answering."""
    data_dir = settings.data_dir
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = _registry_pid(data_dir)
        if (pid is not None and pid != old_pid and config.running_readonly(data_dir) == readonly
                and _answers(*config.running_addr(data_dir, settings))):
            return pid
        time.sleep(0.1)
    host, port = config.running_addr(data_dir, settings)
    raise TemporaryError(f"the registry at {host}:{port} did not come back {'read-only' if readonly else 'writable'} "
                         f"within {timeout_s:g} s of a restart (is `arkserve up` still running? see "
                         f"{data_dir / 'logs'})", code="RegistryUnavailable")


@contextlib.contextmanager
def _stops_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so the pass cleans up after itself."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    before = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _writable_again(settings: Settings, lock: int, timeout_s: float) -> None:
    """Remove the marker, let go of the lock and restart a registry running read-only; wait until it is writable."""
    data_dir = settings.data_dir
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:  # not interrupted between the marker going and the restart
        config.readonly_marker(data_dir).unlink(missing_ok=True)
        os.close(lock)
        pid = _registry_pid(data_dir)
        if pid is not None and config.running_readonly(data_dir):
            _stop(pid)
        else:
            pid = None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if pid is not None:
        _wait(settings, pid, readonly=False, timeout_s=timeout_s)


def garbage_collect(settings: Settings, *, delete_untagged: bool = True, timeout_s: float = 60.0) -> GcReport:
    path = binary(settings)
    if path is None:
        raise TemporaryError(f"no registry binary at {settings.registry.binary}", code="RegistryUnavailable")
    data_dir = settings.data_dir
    storage = config.storage_root(data_dir)
    gc_config = data_dir / "run" / "registry-gc.yml"
    if not (storage / "docker/registry/v2/repositories").is_dir():  # nothing pushed yet (garbage-collect fails)
        return GcReport(0, 0, 0, 0, "")
    with _stops_as_interrupts():
        try:
            lock = config.take_lock(data_dir, exclusive=True)
        except OSError as exc:
            raise TemporaryError(f"cannot use {data_dir / 'run'}: {exc.strerror or exc} (run `arkserve image gc` "
                                 "as the user arkserve runs as, with its data dir)",
                                 code="RegistryUnavailable") from None
        if lock is None:
            raise TemporaryError("another garbage collection or a backup is using the registry's storage; run "
                                 "`arkserve image gc` again when it has ended", code="RegistryBusy")
        try:
            config.readonly_marker(data_dir).write_text(f"garbage collection, pid {os.getpid()}\n")
            pid = _registry_pid(data_dir)
            if pid is not None:  # read-only while collecting
                _stop(pid)
                _wait(settings, pid, readonly=True, timeout_s=timeout_s)
            uploads, upload_bytes = purge_uploads(storage, config.UPLOAD_MAX_AGE_H * 3600)
            # uploads begun, no blob stored yet: garbage-collect fails on a missing blobs directory
            (storage / "docker/registry/v2/blobs").mkdir(exist_ok=True)
            cfg = config.write(settings, readonly=True, path=gc_config)
            before = blob_bytes(storage)
            argv = [path, "garbage-collect", *(["--delete-untagged"] if delete_untagged else []), str(cfg)]
            try:  # the child holds the lock too: killed, this pass leaves no writable registry beside it
                done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False,
                                      pass_fds=(lock,))
            except subprocess.TimeoutExpired:
                raise TemporaryError("garbage collection took more than an hour and was stopped",
                                     code="RegistryGcFailed") from None
            if done.returncode != 0:
                raise TemporaryError(f"garbage collection failed: {(done.stderr or done.stdout)[-800:]}",
                                     code="RegistryGcFailed")
            after = blob_bytes(storage)
        finally:
            gc_config.unlink(missing_ok=True)
            _writable_again(settings, lock, timeout_s)
    out = done.stdout + done.stderr
    return GcReport(before, after, out.count("blob eligible for deletion"), out.count("manifest eligible for deletion"),
                    out, uploads, upload_bytes)
