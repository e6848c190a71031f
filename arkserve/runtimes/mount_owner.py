"""Writable network-disk mounts for a replica that runs as an unprivileged uid.

When the platform runs as root, a sandboxed local replica runs as ``runtime.replica_user`` (``nobody``) while
the files of the network disk belong to root (the API writes them): a ``disk:/DIR:/PATH:rw`` mount would be
unwritable inside the replica. So before such a replica starts, :func:`hand_over` gives the folder it mounts
writable (the folder, its sub-folders and files) to the replica's uid/gid.

- Only folders of the network disk (under ``<data_dir>/disks/``, outside its ``.staging``) are handed over;
  any other writable mount is left as it is.
- Symbolic links are never followed (``lchown`` on each entry, ``os.walk`` without ``followlinks``), so a
  link inside the folder cannot make another file change owner.
- The API runs as root: it still lists, reads, moves and deletes everything there. A file uploaded through
  the API while the replica runs belongs to root (readable, not writable, by the replica) until the
  replica's next start hands the folder over again.
- Every replica of every user runs as the same ``replica_user``; none sees another's folder, because a
  sandbox shows only the replica's own mounts and hides the data directory (docs/security.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def _own(path: str, uid: int, gid: int) -> None:
    st = os.lstat(path)
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.lchown(path, uid, gid)


def hand_over(source: Path, data_dir: Path, uid: int, gid: int) -> bool:
    """Give the network-disk folder ``source`` to ``uid:gid``; ``False`` (nothing changed) when ``source`` is
    not a folder of the network disk under ``data_dir``."""
    disks = (Path(data_dir) / "disks").resolve()
    real = Path(source).resolve()
    if not real.is_relative_to(disks) or real == disks or real.is_relative_to(disks / ".staging") \
            or not real.is_dir():
        return False
    for root, dirs, files in os.walk(real, followlinks=False):
        for name in (*dirs, *files):
            _own(os.path.join(root, name), uid, gid)
    _own(str(real), uid, gid)
    return True
