"""Removing a deleted user's network disk, so that nothing of it passes to a later account of the same name.

A user's files (:func:`~arkserve.storage.disk.user_root`) and their uploads in flight
(:func:`~arkserve.storage.uploads.staging_dir`) are renamed at once into ``<data_dir>/disks/.trash/`` under a
fresh name — a rename on one file system, so the user's name is free of them the moment it returns, even if
the process dies next — and only then removed, which may take a while for a large tree. What a crash leaves in
the trash is removed by the next call. Usernames start with a letter, so no user owns ``.trash``.
"""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from pathlib import Path

from arkserve.storage import paths
from arkserve.storage.disk import Disk, disks_dir, user_root
from arkserve.storage.uploads import staging_dir

log = logging.getLogger(__name__)


def trash_dir(data_dir: Path) -> Path:
    return disks_dir(data_dir) / ".trash"


def remove_user_disk(data_dir: Path, username: str) -> None:
    """Take ``username``'s disk tree and staging area away from that name at once, then delete them (and
    whatever an earlier interrupted removal left in the trash). A tree that cannot be deleted stays in the
    trash, logged, and is retried next time; the name is free of it either way."""
    trash = trash_dir(data_dir)
    trash.mkdir(parents=True, exist_ok=True)
    root = user_root(data_dir, username)
    for kind, tree in (("disk", root), ("uploads", staging_dir(data_dir, username))):
        try:
            tree.rename(trash / f"{username}.{kind}.{secrets.token_hex(8)}")
        except FileNotFoundError:
            continue  # never used
    Disk(root, 0).changed(None)  # forget this process's cached usage of the old tree
    with paths.opened_root(trash) as trash_fd:
        for left in trash.iterdir():
            if left.is_dir() and not left.is_symlink():
                with suppress(OSError):  # logged below, retried next time
                    paths.remove_tree(trash_fd, left.name)  # at any depth, a few descriptors held
            else:
                left.unlink(missing_ok=True)
            if left.exists() or left.is_symlink():
                log.warning("could not remove %s from the disk trash; the next user deletion tries again", left)
