"""WebDAV at /dav/ mounted as a file system with davfs2 (Debian's ``davfs2``, FUSE), as root: a folder lists
through the mount with its entries' names and sizes (a nested folder, a name with a space, a non-ASCII
name), files read, a file written into the mount lands on the disk (davfs2 uploads it on close or at the
latest on unmount), and ``mkdir``, ``mv`` and ``rm`` in the mount change the disk. Needs root,
``mount.davfs`` and ``/dev/fuse``.

The mount's configuration sets ``buf_size 64`` (KiB), as docs/storage.md tells users to: since Linux 6.16
the kernel asks a FUSE file system for directory entries 32 KiB at a time, and davfs2 before 1.7.2 (Debian
12 ships 1.6.1) refuses any request larger than its message buffer (16 KiB by default) with ``EINVAL``, so
without it ``ls`` fails on every folder whatever the server answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.required import unavailable
from tests.storage.conftest import DiskEnv

# What davfs2 adds to the root of every mount: its backup folder for files it could not upload.
DAVFS_BACKUP = "lost+found"


def _listing(folder: Path) -> dict[str, int | str]:
    """Each entry of ``folder`` as read through the mount: its size, or ``"dir"``."""
    out: dict[str, int | str] = {}
    for entry in os.scandir(folder):
        out[entry.name] = "dir" if entry.is_dir() else entry.stat().st_size
    return out


def _drop_cache(mnt: Path) -> None:
    """Remove what davfs2 kept of this mount in root's cache (a folder per server and mount point)."""
    tag = "+" + str(mnt).strip("/").replace("/", "-") + "+"
    cache = Path("/var/cache/davfs2")
    for kept in cache.iterdir() if cache.is_dir() else ():
        if tag in kept.name:
            shutil.rmtree(kept, ignore_errors=True)


def test_a_davfs2_mount_lists_reads_and_writes_the_disk(disk_env: DiskEnv, tmp_path: Path) -> None:
    if shutil.which("mount.davfs") is None or os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        unavailable("ARKSERVE_REQUIRE_DAVFS", "davfs2 needs root, /dev/fuse and mount.davfs (apt-get install davfs2)")
    alice = disk_env.alice
    seeded = {"models/w.bin": b"weights" * 1000, "models/read me.txt": b"with a space",
              "models/模型 é.bin": b"\x00\x01" * 50, "models/nested/deep.txt": b"deep down"}
    for path, body in seeded.items():
        alice.http.put(f"/files/{path}", content=body).raise_for_status()
    url = f"{disk_env.api.url}/dav/"
    (tmp_path / "secrets").write_text(f"{url} {alice.ak} {alice.sk}\n")
    (tmp_path / "secrets").chmod(0o600)
    (tmp_path / "davfs2.conf").write_text(f"use_locks 0\nbuf_size 64\nsecrets {tmp_path / 'secrets'}\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = subprocess.run(["mount", "-t", "davfs", "-o", f"conf={tmp_path / 'davfs2.conf'}", url, str(mnt)],
                           capture_output=True, text=True, timeout=60)
    if mount.returncode != 0:
        unavailable("ARKSERVE_REQUIRE_DAVFS", f"mount.davfs failed here: {mount.stderr.strip()}")
    try:
        assert set(os.listdir(mnt)) - {DAVFS_BACKUP} == {"models"}
        assert _listing(mnt / "models") == {"w.bin": 7000, "read me.txt": 12, "模型 é.bin": 100, "nested": "dir"}
        assert _listing(mnt / "models" / "nested") == {"deep.txt": 9}
        assert (mnt / "models" / "w.bin").read_bytes() == seeded["models/w.bin"]
        assert (mnt / "models" / "模型 é.bin").read_bytes() == seeded["models/模型 é.bin"]
        assert (mnt / "models" / "nested" / "deep.txt").read_bytes() == b"deep down"

        (mnt / "models" / "new.txt").write_text("written through davfs2")
        (mnt / "made").mkdir()  # MKCOL, MOVE and DELETE go to the server before the call returns
        assert (alice.root / "made").is_dir()
        (mnt / "models" / "read me.txt").rename(mnt / "models" / "renamed é.txt")
        assert (alice.root / "models" / "renamed é.txt").read_bytes() == b"with a space"
        assert not (alice.root / "models" / "read me.txt").exists()
        (mnt / "models" / "nested").rename(mnt / "made" / "nested")
        assert (alice.root / "made" / "nested" / "deep.txt").read_bytes() == b"deep down"
        (mnt / "models" / "w.bin").unlink()
        assert not (alice.root / "models" / "w.bin").exists()
        assert _listing(mnt / "made") == {"nested": "dir"}
        assert set(os.listdir(mnt / "models")) == {"renamed é.txt", "模型 é.bin", "new.txt"}
    finally:
        subprocess.run(["umount", str(mnt)], check=True, timeout=60)  # waits for davfs2 to upload what it holds
        _drop_cache(mnt)
    assert (alice.root / "models" / "new.txt").read_text() == "written through davfs2"
    assert {p.name for p in (alice.root / "models").iterdir()} == {"renamed é.txt", "模型 é.bin", "new.txt"}
