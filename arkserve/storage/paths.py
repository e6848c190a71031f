"""Disk paths: checking one, and opening it component by component without ever leaving the user's tree.

A disk path is relative to the root of the user's disk (``datasets/flowers/a.jpg``; ``""`` is the root).
Refused with 400 ``BadPath`` and the reason: a NUL byte, an absolute path, a ``.`` or ``..`` component,
a name over 255 bytes, a path over 4096 bytes, and any symbolic link on the way. The string checks come
first, but the guarantee is the walk: every component is opened with ``O_NOFOLLOW`` relative to the
file descriptor of its parent (``openat``), so a symlink planted in the tree (by a replica with a
read-write mount, say) is met as a symlink and refused, never followed, whatever it points at.
:func:`walk` goes through a whole tree the same way (publishing a model, handing a folder over, usage).
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
    ``strict``, else skipped. Entries gone meanwhile are skipped; descriptors are held only along the path
    being walked."""
    stack: list[tuple[int, Parts, Iterator[str]]] = []
    _push(stack, os.dup(dir_fd), ())
    try:
        while stack:
            fd, parts, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            st = lstat_in(fd, name)
            if st is None:
                continue
            yield fd, (*parts, name), st
            if stat.S_ISDIR(st.st_mode):
                sub = _enter(fd, name, join((*parts, name)), strict=strict)
                if sub is not None:
                    _push(stack, sub, (*parts, name))
    finally:
        for fd, _parts, _names_left in stack:
            os.close(fd)


def _enter(parent_fd: int, name: str, shown: str, *, strict: bool) -> int | None:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if strict:
            raise _refuse(parent_fd, name, shown, exc) from None
        return None


def _push(stack: list[tuple[int, Parts, Iterator[str]]], fd: int, parts: Parts) -> None:
    try:
        stack.append((fd, parts, iter(_names(fd))))
    except BaseException:
        os.close(fd)
        raise


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
