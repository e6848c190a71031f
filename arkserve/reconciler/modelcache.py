"""The node-local model cache: each model version materialised once per host, read-only, shared by every replica.

``<data_dir>/model-cache/<digest hex>/`` holds the version's files as hard links to the market's blobs
(a copy only where the blobs live on another file system), built in a temporary folder and renamed into
place, so a half-built version is never seen under its digest. Folders are made read-only; replicas get a
read-only bind mount of the folder, never a copy. Past ``limit_bytes`` the least recently used versions
that no service mounts are evicted (use touches a version's folder). A version a replica started with
stays pinned until that replica is stopped, so a rolling update away from it (the spec no longer names
it, old replicas still read it) never pulls it from under them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from arkserve.errors import PermanentError
from arkserve.storage.market import CHUNK, BlobStore

Progress = Callable[[int], None]  # percent done, called at 0 and at each step up to 100
_LOCK = threading.Lock()
_PINS: dict[tuple[str, str, str], set[str]] = {}  # (cache root, service, replica) -> digests it mounts
_PINS_LOCK = threading.Lock()


class ModelCache:
    def __init__(self, data_dir: Path, limit_bytes: int) -> None:
        self.root = data_dir / "model-cache"
        self.blobs = BlobStore(data_dir)
        self.limit_bytes = limit_bytes

    def path(self, digest: str) -> Path:
        return self.root / digest.split(":", 1)[-1]

    def cached(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    def ensure(self, digest: str, manifest: list[dict[str, Any]], progress: Progress | None = None) -> Path:
        """The folder of this version on this host, materialised now if it is not there yet."""
        final = self.path(digest)
        if final.is_dir():
            os.utime(final)
            return final
        with self._locked():
            if final.is_dir():  # another thread or process built it while we waited
                os.utime(final)
                return final
            tmp = self.root / f".tmp-{final.name}"
            if tmp.exists():
                _remove(tmp)  # left by a crash
            self._build(tmp, manifest, progress or (lambda pct: None))
            os.rename(tmp, final)
            final.chmod(0o555)
        return final

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with _LOCK, open(self.root / ".lock", "a") as f:  # threads here, processes (other reconcilers) there
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _build(self, tmp: Path, manifest: list[dict[str, Any]], progress: Progress) -> None:
        total = sum(int(f["size"]) for f in manifest) or 1
        done, step = 0, 0
        progress(0)
        tmp.mkdir()
        for f in manifest:
            blob = self.blobs.path(f["sha256"])
            if not blob.is_file():
                raise PermanentError(f"model file {f['path']} ({f['sha256'][:12]}) is missing from the market's "
                                     "blob store", code="ModelBlobMissing")
            dest = tmp / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            _place(blob, dest)
            done += int(f["size"])
            while step < 5 and done * 100 >= (step + 1) * 20 * total:
                step += 1
                progress(step * 20)
        if step < 5:
            progress(100)
        for dirpath, _, _ in os.walk(tmp, topdown=False):
            os.chmod(dirpath, 0o555)  # noqa: S103 (read-only for everyone, on purpose)

    def pin(self, service: str, replica: str, digest: str) -> None:
        """Keep ``digest`` while this replica runs (until :meth:`unpin`)."""
        with _PINS_LOCK:
            _PINS.setdefault((str(self.root), service, replica), set()).add(digest)

    def unpin(self, service: str, replica: str) -> None:
        with _PINS_LOCK:
            _PINS.pop((str(self.root), service, replica), None)

    def pinned(self) -> set[str]:
        with _PINS_LOCK:
            return {d for (root, _, _), ds in _PINS.items() if root == str(self.root) for d in ds}

    def evict(self, in_use: set[str]) -> list[str]:
        """Remove least recently used versions neither in ``in_use`` nor pinned until the cache fits its limit."""
        if not self.root.is_dir():
            return []
        in_use = in_use | self.pinned()
        entries = []
        for d in self.root.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                entries.append((d.stat().st_mtime, d, _size(d)))
        total = sum(size for _, _, size in entries)
        keep = {digest.split(":", 1)[-1] for digest in in_use}
        evicted = []
        for _, d, size in sorted(entries, key=lambda e: e[0]):
            if total <= self.limit_bytes:
                break
            if d.name in keep:
                continue
            with self._locked():
                _remove(d)
            total -= size
            evicted.append("sha256:" + d.name)
        return evicted


def _place(blob: Path, dest: Path) -> None:
    try:
        os.link(blob, dest)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        with blob.open("rb") as src, dest.open("wb") as out:  # another file system: one copy per host
            shutil.copyfileobj(src, out, CHUNK)
        dest.chmod(0o444)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _remove(folder: Path) -> None:
    for dirpath, _, _ in os.walk(folder):
        os.chmod(dirpath, 0o755)  # noqa: S103 (writable again, to be removed)
    shutil.rmtree(folder)
