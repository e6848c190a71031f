"""The disk's usage count: exact across this process's own writes, replacements, moves and deletes (which
move the cached walk), and catching up with bytes written by others once the cache lapses."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkserve.storage import disk as disk_mod
from arkserve.storage.disk import Disk
from arkserve.storage.uploads import Uploads


def _put(up: Uploads, path: str, data: bytes, overwrite: bool = False) -> None:
    w = up.begin(path, len(data), overwrite=overwrite)
    w.write(data)
    w.commit()


def test_usage_follows_our_changes_and_catches_up_with_others(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_mod, "USAGE_CACHE_S", 3600.0)
    root = tmp_path / "disks" / "alice"
    disk = Disk(root, 10**9)
    up = Uploads(disk, tmp_path / "disks" / ".staging" / "alice")
    assert disk.used() == 0  # walked once, then cached
    _put(up, "a", b"x" * 100)
    _put(up, "d/b", b"x" * 50)
    assert disk.used() == 150
    _put(up, "a", b"y" * 30, overwrite=True)
    assert disk.used() == 80
    disk.move("d/b", "a", overwrite=True)  # replaces the 30-byte a
    assert disk.used() == 50
    disk.delete("a")
    assert disk.used() == 0
    _put(up, "t/1", b"z" * 10)
    _put(up, "t/2", b"z" * 10)
    disk.delete("t", recursive=True)
    assert disk.used() == 0
    (root / "outside-write").write_bytes(b"w" * 7)  # a replica with a read-write mount
    assert disk.used() == 0  # not seen while the walk is cached...
    monkeypatch.setattr(disk_mod, "USAGE_CACHE_S", 0.0)
    assert disk.used() == 7  # ...and counted once it lapses
