"""The network disk: one tree of files per user under ``<data_dir>/disks/<username>/``, and its quota.

Every operation goes through :mod:`arkserve.storage.paths` (checked names, ``openat`` + ``O_NOFOLLOW``
on every component), so nothing outside the user's tree is ever read or written. Writes are atomic
(:mod:`arkserve.storage.uploads`: staging file, fsync, rename) and checked against the quota before
a byte is stored. Other parts use :func:`resolve` to check a disk path (e.g. for a service mount).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from arkserve.errors import Conflict, NotFound, PermanentError
from arkserve.storage import paths
from arkserve.storage.paths import BadPath, Parts
from arkserve.storage.space import space_errors

GIB = 1024**3
USAGE_CACHE_S = 5.0
_usage_lock = threading.Lock()
_usage: dict[Path, tuple[float, int]] = {}  # root -> (when walked, bytes)
_usage_gen: dict[Path, int] = {}  # root -> count of this process's changes (a walk overlapping one is not kept)


class QuotaExceeded(PermanentError):
    status = 413
    code = "QuotaExceeded"


def disks_dir(data_dir: Path) -> Path:
    return data_dir / "disks"


def user_root(data_dir: Path, username: str) -> Path:
    """The root of ``username``'s disk (the layout the runtimes' disk mounts rely on)."""
    return disks_dir(data_dir) / username


def resolve(root: Path, rel_path: str, *, must_exist: bool = True) -> Path:
    """The real path of ``rel_path`` under ``root``, checked: BadPath for every refused shape (including a
    symlink anywhere on the way), NotFound (``PathNotFound``) when ``must_exist`` and it is missing.

    ``rel_path`` is relative to the disk's root; callers holding the ``/datasets/x`` notation strip the
    leading ``/`` first."""
    parts = paths.split(rel_path)
    with paths.opened_root(root) as rfd:
        if not parts:
            return root
        with paths.opened_dir(rfd, parts[:-1]) as pfd:
            st = paths.lstat_in(pfd, parts[-1])
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise BadPath(f'"{rel_path}" is a symbolic link; links are never followed on the disk')
    if st is None and must_exist:
        raise NotFound(f'"{rel_path}" not found on the disk', code="PathNotFound")
    return root.joinpath(*parts)


@dataclass(frozen=True)
class Entry:
    path: str
    name: str
    type: str  # file | folder | link | other
    size: int
    modified: float
    escaped: bool = False  # the name is not valid UTF-8 and is shown with \xNN escapes: no path reaches it


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "link" if stat.S_ISLNK(mode) else "other"


def _shown(name: str) -> str:
    """A name as listed: one that is not valid UTF-8 (a replica can make one through a ``:rw`` mount) with
    each byte that does not decode written as ``\\xNN`` (``bad\\xff.txt``), so the listing still answers."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def _listed(fd: int, parts: Parts) -> Iterator[Entry]:
    """The entries of the folder ``fd`` (``parts``), those gone since they were read left out."""
    with os.scandir(fd) as it:
        for e in it:
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            shown = _shown(e.name)
            entry = _entry((*parts, shown), st)
            yield entry if shown == e.name else replace(entry, escaped=True)


def _entry(parts: Parts, st: os.stat_result) -> Entry:
    kind = _kind(st.st_mode)
    return Entry(paths.join(parts), parts[-1] if parts else "", kind, st.st_size if kind == "file" else 0,
                 st.st_mtime)


class Disk:
    """One user's disk: ``root`` is their tree, ``limit`` their quota in bytes."""

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit

    def stat(self, rel: str) -> Entry:
        parts = paths.split(rel)
        with paths.opened_root(self.root) as rfd:
            if not parts:
                return _entry(parts, os.fstat(rfd))
            with paths.opened_dir(rfd, parts[:-1]) as pfd:
                st = paths.lstat_in(pfd, parts[-1])
        if st is None:
            raise NotFound(f'"{rel}" not found on the disk', code="PathNotFound")
        return _entry(parts, st)

    def list(self, rel: str) -> list[Entry]:
        parts = paths.split(rel)
        with paths.opened_root(self.root) as rfd, paths.opened_dir(rfd, parts) as fd:
            out = list(_listed(fd, parts))
        return sorted(out, key=lambda e: (e.type != "folder", e.name))

    @space_errors()
    def mkdir(self, rel: str) -> Entry:
        parts = paths.split(rel)
        if not parts:
            raise Conflict("the root of the disk exists already", code="PathExists")
        with paths.opened_root(self.root) as rfd, paths.opened_dir(rfd, parts[:-1], create=True) as pfd:
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=pfd)
            except FileExistsError:
                st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    raise Conflict(f'"{rel}" exists and is not a folder', code="PathExists") from None
            os.fsync(pfd)
        return self.stat(rel)

    def open(self, rel: str) -> tuple[int, os.stat_result]:
        """A read-only descriptor of a file and its stat (the caller closes it)."""
        with paths.opened_root(self.root) as rfd:
            fd = paths.open_file(rfd, paths.split(rel))
        return fd, os.fstat(fd)

    @space_errors()
    def move(self, src: str, dst: str, *, overwrite: bool = False) -> Entry:
        """Move or rename ``src`` to ``dst`` (its missing parent folders made, once ``src`` is found).

        ``overwrite`` replaces a file (or link) only by a file: a folder at ``dst``, or a folder moved onto
        a file, is ``409 PathExists``."""
        sp, dp = paths.split(src), paths.split(dst)
        if not sp or not dp:
            raise BadPath("the root of the disk cannot be moved or replaced")
        if dp[:len(sp)] == sp:
            raise BadPath(f'cannot move "{src}" into itself')
        with paths.opened_root(self.root) as rfd, paths.opened_dir(rfd, sp[:-1]) as spfd:
            source = paths.lstat_in(spfd, sp[-1])
            if source is None:  # before any folder of dst is made: a failed move leaves nothing behind
                raise NotFound(f'"{src}" not found on the disk', code="PathNotFound")
            with paths.opened_dir(rfd, dp[:-1], create=True) as dpfd:
                target = paths.lstat_in(dpfd, dp[-1])
                if target is not None:
                    _check_replace(dst, source, target, overwrite=overwrite)
                _rename(sp, dp, spfd, dpfd)
                if target is not None:  # a file replaced
                    self.changed(-target.st_size if stat.S_ISREG(target.st_mode) else 0)
                os.fsync(dpfd)
            os.fsync(spfd)
        return self.stat(dst)

    def delete(self, rel: str, *, recursive: bool = False) -> None:
        parts = paths.split(rel)
        if not parts:
            raise BadPath("the root of the disk cannot be deleted")
        with paths.opened_root(self.root) as rfd, paths.opened_dir(rfd, parts[:-1]) as pfd:
            st = paths.lstat_in(pfd, parts[-1])
            if st is None:
                raise NotFound(f'"{rel}" not found on the disk', code="PathNotFound")
            if stat.S_ISDIR(st.st_mode):
                if recursive:
                    self.changed(None)
                    paths.remove_tree(pfd, parts[-1])  # by descriptors (links never followed), at any depth
                else:
                    try:
                        os.rmdir(parts[-1], dir_fd=pfd)
                    except OSError as exc:
                        if exc.errno == errno.ENOTEMPTY:
                            raise Conflict(f'folder "{rel}" is not empty (delete it recursively)',
                                           code="FolderNotEmpty") from None
                        raise
            else:
                os.unlink(parts[-1], dir_fd=pfd)
                self.changed(-st.st_size if stat.S_ISREG(st.st_mode) else 0)
            os.fsync(pfd)

    def used(self) -> int:
        """Bytes of the regular files in the tree (links and folders count nothing).

        The walk's result is kept for :data:`USAGE_CACHE_S` seconds and moved by this process's own writes
        and deletes (:meth:`changed`), so a thousand uploads into a big tree do not walk it a thousand
        times; bytes written by others (a replica with a read-write mount) count within that time."""
        with _usage_lock:
            hit = _usage.get(self.root)
            gen = _usage_gen.get(self.root, 0)
        if hit is not None and time.monotonic() - hit[0] < USAGE_CACHE_S:
            return hit[1]
        total = self._walk()
        with _usage_lock:
            if _usage_gen.get(self.root, 0) == gen:  # no write of ours ran during the walk
                _usage[self.root] = (time.monotonic(), total)
        return total

    def changed(self, delta: int | None) -> None:
        """This process changed the tree's bytes by ``delta`` (``None``: by an unknown amount)."""
        with _usage_lock:
            _usage_gen[self.root] = _usage_gen.get(self.root, 0) + 1
            hit = _usage.get(self.root)
            if hit is not None:
                if delta is None:
                    del _usage[self.root]
                else:
                    _usage[self.root] = (hit[0], hit[1] + delta)

    def _walk(self) -> int:
        if not self.root.is_dir():
            return 0
        with paths.opened_root(self.root) as rfd:  # by descriptors: a link or a fifo swapped in is never opened;
            # at any depth (a replica nests folders 20 000 deep in a second) with a few descriptors held
            return sum(st.st_size for _fd, _name, st in paths.scan(rfd) if stat.S_ISREG(st.st_mode))


def _check_replace(dst: str, source: os.stat_result, target: os.stat_result, *, overwrite: bool) -> None:
    """Conflict unless the existing ``dst`` may be replaced: with ``overwrite``, a file by a non-folder."""
    if not overwrite:
        raise Conflict(f'"{dst}" exists already (use overwrite to replace a file)', code="PathExists")
    if stat.S_ISDIR(target.st_mode):
        raise Conflict(f'"{dst}" exists already and is a folder; overwrite replaces files only',
                       code="PathExists")
    if stat.S_ISDIR(source.st_mode):
        raise Conflict(f'"{dst}" exists and is not a folder; a folder cannot replace it (delete it first)',
                       code="PathExists")


def _rename(sp: Parts, dp: Parts, src_fd: int, dst_fd: int) -> None:
    """``rename`` of the last components, its refusals (the tree changed since it was checked) as errors."""
    src, dst = paths.join(sp), paths.join(dp)
    try:
        os.rename(sp[-1], dp[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except FileNotFoundError:
        raise NotFound(f'"{src}" not found on the disk', code="PathNotFound") from None
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
            raise Conflict(f'"{dst}" exists already and cannot be replaced by "{src}"', code="PathExists") from None
        raise


def quota_message(used: int, needed: int, limit: int) -> str:
    return (f"disk quota exceeded: {used} of {limit} bytes used ({used / GIB:.2f} of {limit / GIB:.2f} GiB), "
            f"{needed} more asked for")
