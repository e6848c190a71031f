"""WebDAV at /dav/ mounted as a file system with davfs2 (Debian's ``davfs2``, FUSE), as root: a file on the disk
reads through the mount, and a file written into the mount lands on the disk (davfs2 uploads it on close or
at the latest on unmount). Needs root, ``mount.davfs`` and ``/dev/fuse``.

Not asserted: listing a folder through the mount. On this machine's kernel (6.18) ``readdir`` on a davfs2
mount fails with ``EINVAL`` whatever the server answers (the same ``PROPFIND`` lists fine with curl and
rclone, see test_disk_rclone.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.required import unavailable
from tests.storage.conftest import DiskEnv


def test_a_davfs2_mount_reads_and_writes_the_disk(disk_env: DiskEnv, tmp_path: Path) -> None:
    if shutil.which("mount.davfs") is None or os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        unavailable("ARKSERVE_REQUIRE_DAVFS", "davfs2 needs root, /dev/fuse and mount.davfs (apt-get install davfs2)")
    alice = disk_env.alice
    alice.http.put("/files/models/w.bin", content=b"weights" * 1000)
    url = f"{disk_env.api.url}/dav/"
    (tmp_path / "secrets").write_text(f"{url} {alice.ak} {alice.sk}\n")
    (tmp_path / "secrets").chmod(0o600)
    (tmp_path / "davfs2.conf").write_text(f"use_locks 0\nsecrets {tmp_path / 'secrets'}\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = subprocess.run(["mount", "-t", "davfs", "-o", f"conf={tmp_path / 'davfs2.conf'}", url, str(mnt)],
                           capture_output=True, text=True, timeout=60)
    if mount.returncode != 0:
        unavailable("ARKSERVE_REQUIRE_DAVFS", f"mount.davfs failed here: {mount.stderr.strip()}")
    try:
        assert (mnt / "models" / "w.bin").read_bytes() == b"weights" * 1000
        (mnt / "models" / "new.txt").write_text("written through davfs2")
    finally:
        subprocess.run(["umount", str(mnt)], check=True, timeout=60)  # waits for davfs2 to upload what it holds
    assert (alice.root / "models" / "new.txt").read_text() == "written through davfs2"
