"""The platform's free space: a full file system as ``507 InsufficientStorage``, and a floor user data stays above.

Every write path of user data (network-disk uploads, WebDAV, the model market) runs under :func:`space_errors`,
which turns ``ENOSPC``/``EDQUOT`` into :class:`~arkserve.errors.InsufficientStorage` (the callers then drop their
staging files: nothing half-written stays, under a real name or a staging one). :func:`check_floor` refuses an
upload before a byte is stored when it would leave its file system with less than ``disk.min_free_mib`` free, so
that user data cannot take the room the store, the logs and the replicas' log spools need.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from arkserve.errors import InsufficientStorage

MIB = 1 << 20
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextmanager
def space_errors() -> Iterator[None]:
    """``ENOSPC``/``EDQUOT`` raised inside as 507 ``InsufficientStorage`` (also usable as a decorator)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _FULL:
            raise InsufficientStorage("the platform's disk is full: nothing was stored; retry once an admin has "
                                      "freed space") from None
        raise


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still store on the file system of ``path`` (or of its nearest existing
    parent folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def check_floor(path: Path, floor: int, adding: int) -> None:
    """507 ``InsufficientStorage`` when storing ``adding`` more bytes under ``path`` would leave its file system
    with less than ``floor`` bytes free (``floor`` 0: no floor)."""
    if floor <= 0:
        return
    free = free_bytes(path)
    if free - adding < floor:
        raise InsufficientStorage(
            f"the platform's disk is full: {adding} more bytes would leave less than the {floor} bytes "
            f"({floor / MIB:.0f} MiB) it keeps free for itself ({free} bytes free now); nothing was stored. "
            "Retry once an admin has freed space (setting disk.min_free_mib)",
            details={"free_bytes": free, "needed": adding, "min_free_bytes": floor})
