"""Disk paths: checking one, and opening it component by component without ever leaving the user's tree.

A disk path is relative to the root of the user's disk (``datasets/flowers/a.jpg``; ``""`` is the root).
Refused with 400 ``BadPath`` and the reason: a NUL byte, an absolute path, a ``.`` or ``..`` component,
a name over 255 bytes, a path over 4096 bytes, and any symbolic link on the way. The string checks come
first, but the guarantee is the walk: every component is opened with ``O_NOFOLLOW`` relative to the
file descriptor of its parent (``openat``), so a symlink planted in the tree (by a replica with a
read-write mount, say) is met as a symlink and refused, never followed, whatever it points at.
:func:`walk` goes through a whole tree the same way (publishing a model), down to :data:`MAX_WALK_DEPTH`
folders; :func:`scan` (usage, handing a folder over) and :func:`remove_tree` (recursive delete) reach any depth.
Every walk holds at most :data:`WALK_FDS` + 1 descriptors and a small record per level, however deep the tree: a
replica with a ``:rw`` mount nests folders 20 000 deep in a second, and a descriptor (and the path) held per level
took the API and the reconciler to EMFILE and gigabytes.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import PurePosixPath

from arkserve.errors import Conflict, NotFound, PermanentError

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_WALK_DEPTH = 256  # how deep below its top :func:`walk` yields entries (each with its parts: a tuple that long)
WALK_FDS = 32  # descriptors a walk holds besides its top's: the deepest folders on its path; above, re-opened by ..
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Parts = tuple[str, ...]


class BadPath(PermanentError):
    status = 400
    code = "BadPath"


class LinkRefused(BadPath):
    """A symbolic link met where a folder or a file was to be opened (still 400 ``BadPath``)."""


def split(path: str) -> Parts:
    """The components of a disk path, after the checks that need no file system (BadPath otherwise)."""
    if "\x00" in path:
        raise BadPath("path contains a NUL byte")
    if path.startswith("/"):
        raise BadPath(f"absolute path {path!r}: disk paths are relative to the root of your disk")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadPath("path is not valid UTF-8") from None
    if size > MAX_PATH_BYTES:
        raise BadPath(f"path is {size} bytes long; the limit is {MAX_PATH_BYTES}")
    parts = tuple(p for p in path.split("/") if p)
    for name in parts:
        if name in (".", ".."):
            raise BadPath(f"path {path!r} contains a {name!r} component")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise BadPath(f"name {name[:40]!r}... is {len(name.encode('utf-8'))} bytes; the limit is "
                          f"{MAX_NAME_BYTES}")
    return parts


def join(parts: Parts) -> str:
    return "/".join(parts)


def _refuse(parent_fd: int, name: str, shown: str, exc: OSError) -> PermanentError:
    """The error for a component that could not be opened as a folder."""
    if exc.errno == errno.ENOENT:
        return NotFound(f'folder "{shown}" not found', code="PathNotFound")
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        return NotFound(f'folder "{shown}" not found', code="PathNotFound")
    if stat.S_ISLNK(st.st_mode):
        return LinkRefused(f'"{shown}" is a symbolic link; links are never followed on the disk')
    return Conflict(f'"{shown}" is not a folder', code="NotAFolder")


def open_dir(root_fd: int, parts: Parts, *, create: bool = False) -> int:
    """A new descriptor of the folder ``parts`` under ``root_fd`` (made, with its parents, when ``create``)."""
    fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            if create:
                with suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=fd)
            try:
                nfd = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refuse(fd, name, join(parts[:i + 1]), exc) from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def opened_dir(root_fd: int, parts: Parts, *, create: bool = False) -> Iterator[int]:
    fd = open_dir(root_fd, parts, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def opened_root(root: str | os.PathLike[str]) -> Iterator[int]:
    os.makedirs(root, mode=0o755, exist_ok=True)
    fd = os.open(root, DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_in(parent_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_file(root_fd: int, parts: Parts) -> int:
    """A read-only descriptor of the regular file ``parts`` (NotFound, BadPath for links and folders)."""
    if not parts:
        raise BadPath("the root of the disk is a folder, not a file")
    with opened_dir(root_fd, parts[:-1]) as pfd:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=pfd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise NotFound(f'file "{join(parts)}" not found', code="PathNotFound") from None
            if exc.errno == errno.ELOOP:
                raise LinkRefused(f'"{join(parts)}" is a symbolic link; links are never followed on the disk') \
                    from None
            raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BadPath(f'"{join(parts)}" is a folder, not a file' if stat.S_ISDIR(mode)
                      else f'"{join(parts)}" is not a regular file')
    return fd


def _names(dir_fd: int) -> list[str]:
    with os.scandir(dir_fd) as it:
        return sorted(e.name for e in it)


def walk(dir_fd: int, *, strict: bool = True) -> Iterator[tuple[int, Parts, os.stat_result]]:
    """Every entry under the folder ``dir_fd``, depth first and in name order: the descriptor of the folder
    holding it, its parts (relative to ``dir_fd``) and its ``lstat``. Nothing is followed: a sub-folder is
    entered by opening it with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor, so one
    swapped for a link after it was listed is never entered: refused (``LinkRefused``, ``Conflict``) when
    ``strict``, else skipped. Entries gone meanwhile are skipped. Entries at most :data:`MAX_WALK_DEPTH` parts
    deep: a folder at that depth is yielded but not entered (``BadPath`` when ``strict``)."""
    for fd, levels, name, st in _tree(dir_fd, strict=strict, max_depth=MAX_WALK_DEPTH):
        if st is not None:
            yield fd, (*(level.name for level in levels[1:]), name), st


def scan(dir_fd: int) -> Iterator[tuple[int, str, os.stat_result]]:
    """Every entry under the folder ``dir_fd`` at any depth, as :func:`walk` (``strict=False``) finds them but
    without their parts: the descriptor of the folder holding it, its name and its ``lstat``. Entries moved
    away while they are walked may be left out."""
    for fd, _levels, name, st in _tree(dir_fd, strict=False, max_depth=None):
        if st is not None:
            yield fd, name, st


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove the folder ``name`` of ``parent_fd`` and everything in it, at any depth (``rm -r``): links are
    removed, never followed. ``OSError`` (``ENOTEMPTY``) when something was added meanwhile."""
    fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    try:
        for pfd, _levels, entry, st in _tree(fd, strict=False, max_depth=None):
            with suppress(FileNotFoundError):
                if st is None:  # its entries are all gone
                    os.rmdir(entry, dir_fd=pfd)
                elif not stat.S_ISDIR(st.st_mode):
                    os.unlink(entry, dir_fd=pfd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent_fd)


class _Level:
    """A folder on the path being walked: its descriptor (``None`` once closed), its identity, its name in its
    parent and the names of its entries left to visit."""

    __slots__ = ("dev", "fd", "ino", "name", "names")

    def __init__(self, fd: int, name: str) -> None:
        try:
            st = os.fstat(fd)
            self.names = iter(_names(fd))
        except BaseException:
            os.close(fd)
            raise
        self.fd: int | None = fd
        self.dev, self.ino, self.name = st.st_dev, st.st_ino, name


def _tree(dir_fd: int, *, strict: bool,
          max_depth: int | None) -> Iterator[tuple[int, list[_Level], str, os.stat_result | None]]:
    """The walk behind :func:`walk`, :func:`scan` and :func:`remove_tree`: for every entry, depth first and in
    name order, (descriptor of its folder, the levels down to that folder, its name, its ``lstat``); and once
    all the entries of a sub-folder were yielded, (its parent's descriptor, the levels down to the parent, its
    name, ``None``).

    Only the top's descriptor and those of the :data:`WALK_FDS` deepest folders on the path are held. A folder
    whose descriptor was closed is opened again through ``..`` of its sub-folder when the walk climbs back, and
    used only if it is the very folder that was left (same device and inode); if the sub-folder was moved
    meanwhile, what is left of the folders above it up to one still open is skipped (``Conflict`` when
    ``strict``), so the walk never climbs out of the tree it started in."""
    levels = [_Level(os.dup(dir_fd), "")]
    try:
        while levels:
            here = levels[-1]
            fd = here.fd
            assert fd is not None  # the deepest level is always open
            name = next(here.names, None)
            if name is None:
                done = levels.pop()
                try:
                    if levels and levels[-1].fd is None:
                        levels[-1].fd = _reopen_parent(fd, levels[-1])
                finally:
                    os.close(fd)
                if not levels:
                    break
                up = levels[-1].fd
                if up is None:  # the folder was moved while it was walked: its old parent is not reachable
                    if strict:
                        raise Conflict(f'"{join(tuple(lv.name for lv in levels[1:]))}" changed while it was read',
                                       code="TreeChanged")
                    while levels[-1].fd is None:
                        levels.pop()
                    continue
                yield up, levels, done.name, None
                continue
            st = lstat_in(fd, name)
            if st is None:
                continue
            yield fd, levels, name, st
            if not stat.S_ISDIR(st.st_mode):
                continue
            shown = join((*(lv.name for lv in levels[1:]), name)) if strict else name
            if max_depth is not None and len(levels) >= max_depth:
                if strict:
                    raise BadPath(f'"{shown}" is more than {max_depth} folders deep')
                continue
            sub = _enter(fd, name, shown, strict=strict)
            if sub is None:
                continue
            levels.append(_Level(sub, name))
            if len(levels) > WALK_FDS + 1:  # keep the top's and the deepest WALK_FDS open (never one per level)
                old = levels[-WALK_FDS - 1]
                if old.fd is not None:
                    os.close(old.fd)
                    old.fd = None
    finally:
        for level in levels:
            if level.fd is not None:
                os.close(level.fd)


def _reopen_parent(child_fd: int, parent: _Level) -> int | None:
    """``parent``'s descriptor again, through ``..`` of its sub-folder ``child_fd``: ``None`` unless it is the
    same folder (the sub-folder was moved elsewhere meanwhile)."""
    try:
        fd = os.open("..", DIR_FLAGS, dir_fd=child_fd)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (parent.dev, parent.ino):
        os.close(fd)
        return None
    return fd


def _enter(parent_fd: int, name: str, shown: str, *, strict: bool) -> int | None:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if strict:
            raise _refuse(parent_fd, name, shown, exc) from None
        return None


def open_disk_folder(disks_root: str | os.PathLike[str], source: str | os.PathLike[str]) -> tuple[int, int, int]:
    """The folder ``source`` of the network disk, opened by descriptors for a replica to mount: its descriptor
    (``O_DIRECTORY``, close-on-exec; the caller closes it), ``st_dev`` and ``st_ino``.

    ``source`` is an absolute path under ``disks_root`` (``<data_dir>/disks``, resolved: a platform directory
    no user can change); ``<user>/...`` below it is opened component by component with ``O_NOFOLLOW``
    (:func:`open_dir`), so the descriptor is a folder inside that user's disk by construction, whatever links
    a replica has planted since the path was checked (``LinkRefused`` for a link on the way, ``NotFound``,
    ``Conflict`` for a file). Mounting the descriptor (``bwrap --bind-fd``, ``mount(2)`` on
    ``/proc/self/fd/N``) mounts that very folder: no path is looked up again."""
    try:
        rel = PurePosixPath(os.fspath(source)).relative_to(PurePosixPath(os.fspath(disks_root)))
    except ValueError:
        raise BadPath(f'"{source}" is not a folder of the network disk') from None
    parts = split(rel.as_posix()) if rel.parts else ()
    if not parts or parts[0].startswith("."):  # the disks directory itself, .staging, .trash: no user's disk
        raise BadPath(f'"{source}" is not a folder of a user\'s network disk')
    with opened_root(disks_root) as root_fd:
        fd = open_dir(root_fd, parts)
    st = os.fstat(fd)
    return fd, st.st_dev, st.st_ino
