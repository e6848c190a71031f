"""Writable network-disk mounts for a replica that runs as an unprivileged uid.

When the platform runs as root, a sandboxed local replica runs as ``runtime.replica_user`` (``nobody``) while
the files of the network disk belong to root (the API writes them): a ``disk:/DIR:/PATH:rw`` mount would be
unwritable inside the replica. So before such a replica starts, :func:`hand_over` gives the folder it mounts
writable (the folder, its sub-folders and files) to the replica's uid/gid.

- Only folders of the network disk (under ``<data_dir>/disks/``, outside its ``.staging``) are handed over;
  any other writable mount is left as it is.
- Symbolic links are never followed: the folder is opened from ``<data_dir>/disks`` component by component
  and walked by descriptors (:func:`arkserve.storage.paths.scan`, ``O_NOFOLLOW`` on every component), and
  each entry changes owner by name relative to its folder's descriptor without following it
  (``fchownat(..., AT_SYMLINK_NOFOLLOW)``). A link inside the folder, or a sub-folder swapped for one while
  the walk runs (by a replica already running), cannot make a file outside the folder change owner.
- The API runs as root: it still lists, reads, moves and deletes everything there. A file uploaded through
  the API while the replica runs belongs to root (readable, not writable, by the replica) until the
  replica's next start hands the folder over again.
- Every replica of every user runs as the same ``replica_user``; none sees another's folder, because a
  sandbox shows only the replica's own mounts and hides the data directory (docs/security.md).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from arkserve.errors import PermanentError
from arkserve.storage import paths


def _own(parent_fd: int, name: str, st: os.stat_result, uid: int, gid: int) -> None:
    if (st.st_uid, st.st_gid) != (uid, gid):
        with suppress(FileNotFoundError):  # gone meanwhile (a running replica deleted it)
            os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)


def hand_over(source: Path, data_dir: Path, uid: int, gid: int) -> bool:
    """Give the network-disk folder ``source`` to ``uid:gid``; ``False`` (nothing changed) when ``source`` is
    not a folder of the network disk under ``data_dir``."""
    disks = (Path(data_dir) / "disks").resolve()
    real = Path(source).resolve()
    if not real.is_relative_to(disks) or real == disks or real.is_relative_to(disks / ".staging") \
            or not real.is_dir():
        return False
    with paths.opened_root(disks) as dfd:
        try:
            fd = paths.open_dir(dfd, real.relative_to(disks).parts)
        except PermanentError:  # no longer a folder, or a link on the way: nothing is followed
            return False
    try:
        hand_over_fd(fd, uid, gid)
    finally:
        os.close(fd)
    return True


def hand_over_fd(fd: int, uid: int, gid: int) -> None:
    """Give the folder open at ``fd`` (a network-disk folder the runtime opened by descriptors: the very one the
    replica will mount, whatever its path names by now) and everything in it to ``uid:gid``."""
    for parent, name, st in paths.scan(fd):  # at any depth, holding a few descriptors (never one per level)
        _own(parent, name, st, uid, gid)
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.fchown(fd, uid, gid)
