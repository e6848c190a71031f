"""Network-disk folders staged for the docker runtime: bound by arkserve itself, so that Docker binds them from a
path no user can change.

A replica with a writable mount of a parent folder could swap a disk folder for a link to ``/`` between the
reconciler's check and Docker's bind, and the daemon would follow it. So each disk folder is opened by
descriptors and bound by the kernel from that descriptor onto ``<data_dir>/runtime/mounts/<ark-name>/<n>``
(:class:`Staging`), under directories of root only; Docker is given that path. It takes root (``mount(2)``).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from arkserve.errors import PermanentError, TemporaryError
from arkserve.runtimes.base import Mount, parse_object_name
from arkserve.storage import paths

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
MNT_DETACH = 2
NEEDS_ROOT = ("network-disk mounts on the docker runtime need the platform to run as root (it binds the "
              "checked folder itself, so that Docker never looks its path up): run arkserve as root, or use "
              "the local runtime")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str | None, target: str, flags: int) -> None:
    if _libc().mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _umount(target: str) -> bool:
    """Detach the mount at ``target``; False when nothing is mounted there (or it is gone)."""
    if _libc().umount2(target.encode(), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, os.strerror(err), target)


def _private_dir(path: Path) -> None:
    """``path`` as a directory of root only (0700), made when missing; never a link."""
    with suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise TemporaryError(f'"{path}" is not a directory of the platform')
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)


class Staging:
    """Network-disk folders bound by arkserve, for Docker to bind from a path no user can change.

    For each disk mount of a container, the folder is opened from ``<data_dir>/disks`` by descriptors
    (:func:`arkserve.storage.paths.open_disk_folder`: ``O_NOFOLLOW`` on every component, so inside the owner's
    disk by construction) and bound with ``mount(2)`` from ``/proc/self/fd/N``: a magic link, the kernel binds
    the very folder the descriptor refers to, looking no name up. The target,
    ``<root>/<ark-name>/<n>``, lies under directories of root only (0700): nothing on its way can be swapped.
    The bind is ``nosuid,nodev``, and read-only when the mount is. Docker is given that target."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "runtime" / "mounts"

    def bind(self, name: str, mounts: Sequence[Mount]) -> list[str]:
        """The source Docker is given for each mount (the staged bind for a disk folder); releases what an
        earlier container of ``name`` left first."""
        self.release(name)
        if not any(m.disk_root for m in mounts):
            return [m.source for m in mounts]
        if os.geteuid() != 0:
            raise PermanentError(NEEDS_ROOT, code="ValidationFailed")
        out: list[str] = []
        try:
            for i, m in enumerate(mounts):
                out.append(self._bind_one(name, i, m) if m.disk_root else m.source)
        except BaseException:
            self.release(name)
            raise
        return out

    def _bind_one(self, name: str, index: int, m: Mount) -> str:
        fd, dev, ino = paths.open_disk_folder(m.disk_root, m.source)
        try:
            self.root.parent.parent.mkdir(parents=True, exist_ok=True)  # the data dir
            _private_dir(self.root.parent)
            _private_dir(self.root)
            _private_dir(self.root / name)
            target = self.root / name / str(index)
            _private_dir(target)
            flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (MS_RDONLY if m.read_only else 0)
            try:
                _mount(f"/proc/self/fd/{fd}", str(target), MS_BIND)
                _mount(None, str(target), flags)
            except PermissionError:
                raise PermanentError(NEEDS_ROOT, code="ValidationFailed") from None
            except OSError as exc:
                raise TemporaryError(f'cannot bind the disk folder "{m.source}": {exc}') from exc
            st = os.stat(target, follow_symlinks=False)
            if (st.st_dev, st.st_ino) != (dev, ino):  # never expected: the kernel bound the descriptor's folder
                raise TemporaryError(f'the disk folder "{m.source}" did not come out at its staging path')
            return str(target)
        finally:
            os.close(fd)

    def release(self, name: str) -> None:
        """Unmount and remove ``<root>/<name>``. Only ``rmdir``: never a recursive removal, which would go into
        a user's disk through a bind still there."""
        folder = self.root / name
        try:
            entries = sorted(os.listdir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            target = str(folder / entry)
            for _ in range(16):  # a bind over a bind (a start that died half-way): each one
                if not _umount(target):
                    break
            with suppress(FileNotFoundError):
                os.rmdir(target)
        with suppress(FileNotFoundError):
            os.rmdir(folder)

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if parse_object_name(n) is not None)
        except FileNotFoundError:
            return []
