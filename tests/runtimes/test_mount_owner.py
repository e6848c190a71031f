"""Handing a writable disk folder to the replica's uid (run as root): the folder and everything in it change
owner, and nothing outside it ever does, even while a running replica swaps a sub-folder for a link."""

from __future__ import annotations

import ctypes
import os
import threading
from contextlib import suppress
from pathlib import Path

import pytest

from arkserve.runtimes.mount_owner import hand_over

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")

NOBODY = 65534
AT_FDCWD, RENAME_EXCHANGE = -100, 2


def _disk(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(data_dir, the folder to hand over, a root-owned folder outside the disk standing for /etc)."""
    data, victim = tmp_path / "data", tmp_path / "etc"
    victim.mkdir()
    (victim / "shadow").write_text("root:$6$...\n")
    shared = data / "disks" / "alice" / "shared"
    (shared / "sub").mkdir(parents=True)
    return data, shared, victim


def test_the_folder_and_its_entries_are_handed_over_links_themselves_only(tmp_path: Path) -> None:
    data, shared, victim = _disk(tmp_path)
    (shared / "sub" / "f.txt").write_text("x")
    (shared / "etc").symlink_to(victim)  # planted by the replica
    (shared / "shadow").symlink_to(victim / "shadow")
    assert hand_over(shared, data, NOBODY, NOBODY)
    for p in (shared, shared / "sub", shared / "sub" / "f.txt", shared / "etc", shared / "shadow"):
        assert os.lstat(p).st_uid == NOBODY, p
    assert os.lstat(victim).st_uid == 0 and os.lstat(victim / "shadow").st_uid == 0


def test_only_folders_of_the_disk_are_handed_over(tmp_path: Path) -> None:
    data, shared, victim = _disk(tmp_path)
    (data / "disks" / ".staging" / "alice").mkdir(parents=True)
    for source in (victim, data / "disks", data / "disks" / ".staging" / "alice", shared / "missing"):
        assert not hand_over(source, data, NOBODY, NOBODY)
    assert os.lstat(victim).st_uid == 0 and os.lstat(data / "disks").st_uid == 0


def test_a_sub_folder_swapped_for_a_link_during_the_walk_is_never_followed(tmp_path: Path) -> None:
    data, shared, victim = _disk(tmp_path)
    for i in range(200):  # a walk long enough for the swap to land inside it
        (shared / "sub" / f"f{i}").write_text("x")
    (shared / "sub" / "shadow").write_text("decoy")
    (shared / "alt").symlink_to(victim)  # the running replica's link (an absolute host path)
    libc = ctypes.CDLL(None, use_errno=True)
    x, y = os.fsencode(shared / "alt"), os.fsencode(shared / "sub")
    stop = threading.Event()

    def racer() -> None:  # what the replica (uid nobody, owner of the folder) can do: renames inside it
        while not stop.is_set():
            libc.renameat2(AT_FDCWD, x, AT_FDCWD, y, RENAME_EXCHANGE)

    thread = threading.Thread(target=racer)
    thread.start()
    try:
        for _ in range(300):  # the path-based walk gave the victim away within a few runs
            with suppress(OSError):  # an entry gone mid-walk is not the point here
                hand_over(shared, data, NOBODY, NOBODY)
            assert os.lstat(victim / "shadow").st_uid == 0
            assert os.lstat(victim).st_uid == 0
    finally:
        stop.set()
        thread.join()
