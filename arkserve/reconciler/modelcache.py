"""The node-local model cache: each model version materialised once per host, read-only, shared by every replica.

``<data_dir>/model-cache/<digest hex>/`` holds the version's files as hard links to the market's blobs
(a copy only where the blobs live on another file system), built in a temporary folder, checked against its
manifest and renamed into place, so only a complete version is ever seen under its digest; the manifest it
was built from is kept beside it (``.manifest-<hex>``), and a folder found there later that no longer holds
every file of it (names and sizes) is built again, never mounted. Folders are made read-only; replicas get a
read-only bind mount of the folder, never a copy. Past ``limit_bytes`` the least recently used versions
that no service mounts are evicted (use touches a version's folder). A version a replica started with
stays pinned until that replica is stopped, so a rolling update away from it (the spec no longer names
it, old replicas still read it) never pulls it from under them. Pins are files (``.pins/<service>@<replica>``),
so they outlive the reconciler process (a restart with ``--keep-replicas``, an upgrade, a failover); a pin
whose replica has no row in the store any more is dropped (:meth:`ModelCache.forget`). And whatever the pins
say, a folder bound into a running sandbox or container on this host is never evicted.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, overload

from arkserve.errors import PermanentError
from arkserve.storage.market import CHUNK, BlobStore

Progress = Callable[[int], None]  # percent done, called at 0 and at each step up to 100
Pin = tuple[str, str]  # (service, replica)
_LOCK = threading.Lock()
_PINS_LOCK = threading.Lock()
_PIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # service names (DNS labels) and replica ids


class ModelCache:
    def __init__(self, data_dir: Path, limit_bytes: int) -> None:
        self.root = data_dir / "model-cache"
        self.pins = self.root / ".pins"
        self.blobs = BlobStore(data_dir)
        self.limit_bytes = limit_bytes

    def path(self, digest: str) -> Path:
        return self.root / digest.split(":", 1)[-1]

    def cached(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    @overload
    def ensure(self, digest: str, manifest: list[dict[str, Any]], progress: Progress | None = None) -> Path: ...
    @overload
    def ensure(self, digest: str, manifest: None, progress: Progress | None = None) -> Path | None: ...

    def ensure(self, digest: str, manifest: list[dict[str, Any]] | None,
               progress: Progress | None = None) -> Path | None:
        """The folder of this version on this host, materialised now if it is not there (or not complete).

        ``manifest`` None: the folder only if it is there and complete by the manifest kept beside it, else
        None (the caller reads the manifest and asks again): nothing is ever built without the manifest."""
        final = self.path(digest)
        if _complete(final, manifest if manifest is not None else self._saved_manifest(final)):
            os.utime(final)
            return final
        if manifest is None:
            return None
        with self._locked():
            if _complete(final, manifest):  # another thread or process built it while we waited
                self._save_manifest(final, manifest)  # a folder from before manifests were kept beside it
                os.utime(final)
                return final
            if final.exists():  # incomplete: files gone, or left empty by an older build; built again
                _remove(final)
            tmp = self.root / f".tmp-{final.name}"
            if tmp.exists():
                _remove(tmp)  # left by a crash
            self._build(tmp, manifest, progress or (lambda pct: None))
            if not _complete(tmp, manifest):
                raise PermanentError(f"model {digest} could not be materialised in the model cache: its files do "
                                     "not match its manifest", code="ModelBlobMissing")
            self._save_manifest(final, manifest)  # before the folder: a folder there always has its manifest
            os.rename(tmp, final)
            final.chmod(0o555)
        return final

    def _manifest_file(self, final: Path) -> Path:
        return self.root / f".manifest-{final.name}"

    def _saved_manifest(self, final: Path) -> list[dict[str, Any]] | None:
        try:
            saved = json.loads(self._manifest_file(final).read_text())
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, list) else None

    def _save_manifest(self, final: Path, manifest: list[dict[str, Any]]) -> None:
        _write(self._manifest_file(final), json.dumps(manifest))

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

    # ------------------------------------------------------------------------------- pins
    def _pin_file(self, service: str, replica: str) -> Path:
        if not (_PIN_NAME.match(service) and _PIN_NAME.match(replica)):
            raise PermanentError(f"cannot pin a model for {service!r}/{replica!r}: not a service and replica name")
        return self.pins / f"{service}@{replica}"

    def pin(self, service: str, replica: str, digest: str) -> None:
        """Keep ``digest`` while this replica runs (until :meth:`unpin`), across restarts of the reconciler."""
        path = self._pin_file(service, replica)
        with _PINS_LOCK:
            digests = _lines(path)
            if digest not in digests:
                self.pins.mkdir(parents=True, exist_ok=True)
                _write(path, "".join(f"{d}\n" for d in sorted({*digests, digest})))

    def unpin(self, service: str, replica: str) -> None:
        with _PINS_LOCK:
            self._pin_file(service, replica).unlink(missing_ok=True)

    def pin_keys(self) -> set[Pin]:
        """The replicas holding pins now."""
        try:
            names = os.listdir(self.pins)
        except FileNotFoundError:
            return set()
        return {(s, r) for s, _, r in (n.partition("@") for n in names if not n.startswith(".")) if r}

    def forget(self, stale: Iterable[Pin]) -> None:
        """Drop the pins of replicas that are gone (no row in the store), stopped while no reconciler ran."""
        for service, replica in stale:
            self.unpin(service, replica)

    def pinned(self) -> set[str]:
        with _PINS_LOCK:
            return {d for s, r in self.pin_keys() for d in _lines(self.pins / f"{s}@{r}")}

    # ------------------------------------------------------------------------------- eviction
    def evict(self, in_use: set[str]) -> list[str]:
        """Remove least recently used versions neither in ``in_use``, nor pinned, nor bound into a running
        replica on this host, until the cache fits its limit."""
        if not self.root.is_dir():
            return []
        keep = {digest.split(":", 1)[-1] for digest in in_use | self.pinned()} | _mounted_sources()
        entries = []
        for d in self.root.iterdir():
            if not d.name.startswith("."):
                with suppress(FileNotFoundError):  # evicted meanwhile by another thread or process
                    if d.is_dir():
                        entries.append((d.stat().st_mtime, d, _size(d)))
        total = sum(size for _, _, size in entries)
        evicted = []
        for _, d, size in sorted(entries, key=lambda e: e[0]):
            if total <= self.limit_bytes:
                break
            if d.name in keep:
                continue
            with self._locked():
                taken = self._take_away(d)
            if taken is None:  # pinned since the snapshot: stays
                continue
            total -= size
            if taken:
                evicted.append("sha256:" + d.name)
        return evicted

    def _take_away(self, d: Path) -> bool | None:
        """Remove ``d`` (True) unless it is gone (False) or pinned now (None); under the lock. It is first renamed
        out of sight and the pins are read after that: a replica pins before it looks for its folder, so either
        the pin is seen here (the folder is put back), or the folder is already gone for it (built again)."""
        gone = self.root / f".evict-{d.name}"
        if gone.exists():
            _remove(gone)  # left by a crash
        try:
            os.rename(d, gone)
        except FileNotFoundError:
            return False
        if "sha256:" + d.name in self.pinned():
            os.rename(gone, d)
            return None
        self._manifest_file(d).unlink(missing_ok=True)
        _remove(gone)
        return True


def _complete(folder: Path, manifest: list[dict[str, Any]] | None) -> bool:
    """``folder`` holds every file of ``manifest`` as a regular file of its size (what a build leaves)."""
    if manifest is None or not folder.is_dir():
        return False
    for f in manifest:
        try:
            st = (folder / f["path"]).lstat()
        except (FileNotFoundError, NotADirectoryError):  # other errors are raised: a folder replicas may
            return False  # be reading is rebuilt only when a file is really missing
        if not stat.S_ISREG(st.st_mode) or st.st_size != int(f["size"]):
            return False
    return True


def _mounted_sources() -> set[str]:
    """Names of the model-cache folders bound somewhere on this host: a running bwrap sandbox's or container's
    mount namespace shows the bind in /proc/PID/mountinfo, whose field 4 (the root of the mount within its file
    system) ends with ``/model-cache/<hex>`` wherever the data dir's file system is mounted. Each mount
    namespace is read once."""
    out: set[str] = set()
    seen: set[str] = set()
    for pid in Path("/proc").glob("[0-9]*"):
        try:
            ns = os.readlink(pid / "ns" / "mnt")
        except OSError:
            ns = ""  # another user's process (a platform not run as root): read its mountinfo all the same
        if ns in seen:
            continue
        if ns:
            seen.add(ns)
        try:
            text = (pid / "mountinfo").read_text()
        except OSError:  # gone meanwhile, or not readable
            continue
        for line in text.splitlines():
            fields = line.split(" ", 4)
            if len(fields) < 4:
                continue
            parent, _, name = fields[3].rpartition("/")
            if parent.endswith("/model-cache"):
                out.add(name)
    return out


def _lines(path: Path) -> set[str]:
    try:
        return {line for line in path.read_text().splitlines() if line}
    except FileNotFoundError:
        return set()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    total = 0
    for p in folder.rglob("*"):
        with suppress(FileNotFoundError):
            if p.is_file():
                total += p.stat().st_size
    return total


def _remove(folder: Path) -> None:
    for dirpath, _, _ in os.walk(folder):
        os.chmod(dirpath, 0o755)  # noqa: S103 (writable again, to be removed)
    shutil.rmtree(folder)
