"""The model market's bytes: content-addressed blobs, version manifests and their digests, publishing.

A version is a manifest: its files (relative path, size, SHA-256), sorted by path. Its digest is
``sha256:`` + the SHA-256 of the manifest's canonical JSON, so equal files give an equal digest and
a version can never change under its digest. File contents live once under
``<data_dir>/models/blobs/sha256/<ab>/<hex>`` (read-only), however many versions or models list them.
Publishing reads a folder (of the user's network disk) or a tar stream; both end in :meth:`BlobStore.put`.
A full file system is 507 ``InsufficientStorage`` (the blob's temporary file removed), as is a file that would
leave the blob store's file system with less than its ``min_free`` bytes (checked before a byte of it is stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from arkserve.errors import PermanentError, ValidationFailed
from arkserve.storage import disk, paths
from arkserve.storage.space import check_floor, space_errors

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CHUNK = 1 << 20
GC_GRACE_S = 3600.0  # a blob touched this recently is never collected (a publish may be about to list it)

Manifest = list[dict[str, Any]]


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise ValidationFailed("name: 1-64 chars of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
                               field="name")
    return name


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ValidationFailed("version: 1-64 chars of A-Z, a-z, 0-9, '.', '_' and '-'", field="version")
    return version


def parse_ref(ref: str) -> tuple[str, str]:
    """``flowers-resnet34@1`` -> ``("flowers-resnet34", "1")``."""
    name, sep, version = ref.partition("@")
    if not sep or not NAME_RE.match(name) or not VERSION_RE.match(version):
        raise ValidationFailed(f"model reference {ref!r}: expected NAME@VERSION, e.g. flowers-resnet34@1",
                               field="ref")
    return name, version


def manifest_digest(manifest: Manifest) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def clean_member(name: str) -> str:
    """A file's path inside a version: relative, no '..', no NUL, each part at most 255 bytes."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if name.startswith("/") or not parts or ".." in parts or "\x00" in name:
        raise ValidationFailed(f"file {name!r}: paths must be relative, without '..' or NUL", field="files")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationFailed(f"file {name!r}: the name is not valid UTF-8", field="files") from None
    if any(len(p.encode()) > 255 for p in parts):
        raise ValidationFailed(f"file {name!r}: a name is longer than 255 bytes", field="files")
    return "/".join(parts)


class BlobStore:
    """Content-addressed, read-only files under ``<data_dir>/models/blobs/sha256``; the same bytes once."""

    def __init__(self, data_dir: Path, *, min_free: int = 0) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "models" / "blobs" / "sha256"
        self.tmp = data_dir / "models" / "tmp"
        self.min_free = min_free  # bytes a publish must leave free on the file system (0: no floor)

    def check_room(self, adding: int) -> None:
        """507 ``InsufficientStorage`` when ``adding`` more bytes would pass the free-space floor."""
        check_floor(self.tmp, self.min_free, adding)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    @space_errors()
    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream of bytes; (sha256 hex, size). Bytes already stored are not stored again (a full disk:
        507, nothing left behind)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        h, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = h.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.utime(final)  # fresh again: GC leaves it alone while this publish finishes
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp_name, 0o444)
                with contextlib.suppress(FileExistsError):  # a concurrent writer of the same bytes won
                    os.link(tmp_name, final)  # never replaces
                _fsync_dir(final.parent)
            return sha, size
        finally:
            os.unlink(tmp_name)

    def collect(self, keep: set[str], grace_s: float = GC_GRACE_S) -> int:
        """Remove blobs no manifest lists (and untouched for ``grace_s``); returns how many."""
        removed, cutoff = 0, time.time() - grace_s
        if not self.root.exists():
            return 0
        for sub in self.root.iterdir():
            for blob in sub.iterdir():
                if blob.name not in keep and blob.stat().st_mtime < cutoff:
                    blob.unlink()
                    removed += 1
        return removed

    def usage(self) -> tuple[int, int]:
        """(blob count, bytes) actually stored."""
        count = total = 0
        if self.root.exists():
            for blob in self.root.glob("*/*"):
                count += 1
                total += blob.stat().st_size
        return count, total


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(CHUNK):
        yield chunk


def _finish(files: dict[str, dict[str, Any]]) -> Manifest:
    if not files:
        raise PermanentError("the version has no files", code="EmptyVersion")
    return [files[p] for p in sorted(files)]


def publish_dir(blobs: BlobStore, folder: Path) -> Manifest:
    """Every regular file under ``folder`` into the blob store; symbolic links are refused (they could
    lead out of the folder), so a version holds exactly the bytes that were in it.

    The tree is walked by descriptors (:func:`arkserve.storage.paths.walk`) and each file opened with
    ``O_NOFOLLOW`` relative to its folder's descriptor, so a folder swapped for a link while it is read
    (by a replica with a ``:rw`` mount) is refused, never followed. A folder of the network disk is
    opened the same way from ``<data_dir>/disks``."""
    files: dict[str, dict[str, Any]] = {}
    with _opened_folder(blobs, folder) as top:
        rel = ""
        try:
            for parent, parts, st in paths.walk(top):
                rel = paths.join(parts)
                if stat.S_ISLNK(st.st_mode):
                    raise _link_refused(rel)
                if stat.S_ISREG(st.st_mode):
                    member = clean_member(rel)
                    blobs.check_room(st.st_size)
                    files[member] = {"path": member, **_put_file(blobs, parent, parts[-1])}
        except paths.LinkRefused:  # a folder or file swapped for a link after it was listed
            raise _link_refused(rel) from None
    return _finish(files)


def folder_bytes(blobs: BlobStore, folder: Path) -> int:
    """What the regular files under ``folder`` hold, walked as :func:`publish_dir` walks it (links never
    followed): the quota's look before a byte is copied."""
    with _opened_folder(blobs, folder) as top:
        return sum(st.st_size for _parent, _parts, st in paths.walk(top, strict=False) if stat.S_ISREG(st.st_mode))


def _link_refused(rel: str) -> PermanentError:
    return PermanentError(f"{rel}: symbolic links cannot be published", code="SymlinkRefused")


@contextlib.contextmanager
def _opened_folder(blobs: BlobStore, folder: Path) -> Iterator[int]:
    """A descriptor of ``folder``: from ``<data_dir>/disks`` component by component (``O_NOFOLLOW``) for a
    folder of the network disk, else ``folder`` itself (its last component not followed)."""
    if not folder.is_dir():
        raise PermanentError(f"{folder.name or folder}: not a folder", code="NotAFolder")
    disks = disk.disks_dir(blobs.data_dir)
    anchor = disks if folder.is_relative_to(disks) else folder.parent
    with paths.opened_root(anchor) as afd, paths.opened_dir(afd, folder.relative_to(anchor).parts) as fd:
        yield fd


def _put_file(blobs: BlobStore, parent_fd: int, name: str) -> dict[str, Any]:
    """The file ``name`` of the folder ``parent_fd`` (opened with ``O_NOFOLLOW``) into the blob store."""
    fd = paths.open_file(parent_fd, (name,))
    with os.fdopen(fd, "rb") as f:
        sha, size = blobs.put(_read(f))
    return {"size": size, "sha256": sha}


class ArchiveTooLarge(Exception):
    """An archive's files add up past the room given to :func:`publish_tar` (``size``: their sizes so far)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def publish_tar(blobs: BlobStore, stream: IO[bytes], room: int | None = None) -> Manifest:
    """A tar stream (plain, gzip, bz2 or xz), read once front to back, into the blob store.

    Regular files and folders only: links and devices are refused with the member's name. With ``room``, the
    files may add up to that many bytes: each member's size is in its header, so the one that would pass it is
    refused (:class:`ArchiveTooLarge`) before a byte of it is stored, whatever the compression."""
    files: dict[str, dict[str, Any]] = {}
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isreg():
                    raise PermanentError(f"{member.name}: only regular files and folders can be published",
                                         code="BadArchive")
                total += member.size
                if room is not None and total > room:
                    raise ArchiveTooLarge(total)
                rel = clean_member(member.name)
                if rel in files:
                    raise PermanentError(f"{rel}: listed twice in the archive", code="BadArchive")
                blobs.check_room(member.size)
                f = tar.extractfile(member)
                assert f is not None
                sha, size = blobs.put(_read(f))
                files[rel] = {"path": rel, "size": size, "sha256": sha}
    except (tarfile.TarError, EOFError) as exc:
        raise PermanentError(f"not a readable tar archive: {exc}", code="BadArchive") from None
    return _finish(files)


def readme(blobs: BlobStore, manifest: Manifest, limit: int = 64 * 1024) -> str:
    """The version's README.md (top level), if any: the default description of a new model."""
    for f in manifest:
        if f["path"].lower() in ("readme.md", "readme") and f["size"] <= limit:
            return blobs.path(f["sha256"]).read_text(errors="replace")
    return ""


def disk_folder(data_dir: Path, username: str, path: str) -> Path:
    """An existing file or folder of ``username``'s network disk, by the disk's own path rules (``BadPath``
    for a refused shape, ``NotFound`` when missing); ``/datasets/x`` and ``datasets/x`` are the same."""
    return disk.resolve(disk.user_root(data_dir, username), path.lstrip("/"), must_exist=True)
