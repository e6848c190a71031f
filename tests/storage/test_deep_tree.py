"""A tree nested thousands of folders deep (what a replica with a ``:rw`` disk mount makes in a second) costs the
API and the reconciler a few descriptors and little memory, however deep: usage (and so every upload's quota
check) counts its bytes at any depth, a recursive delete and a user's deletion remove it, a hand-over to the
replica's uid reaches all of it, a walk that climbs back through ``..`` never leaves its tree, and a publish
(a walk that builds every entry's path) refuses it with ``BadPath``.

The descriptor checks run with the process's soft ``RLIMIT_NOFILE`` a little above what it holds: a walk that
held one descriptor per level (as before) fails with EMFILE there."""

from __future__ import annotations

import os
import resource
import subprocess
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from arkserve.runtimes.mount_owner import hand_over
from arkserve.storage import disk as disk_mod
from arkserve.storage import paths
from arkserve.storage.disk import Disk
from arkserve.storage.market import BlobStore, publish_dir
from arkserve.storage.removal import remove_user_disk, trash_dir
from tests.storage.conftest import DiskEnv

DEPTH = 3000  # over Python's recursion limit and over the descriptors _few_descriptors leaves
NOBODY = 65534


@pytest.fixture(autouse=True)
def _no_deep_tree_left(tmp_path: Path) -> Iterator[None]:
    """The test's folder removed at its end (after the API's): pytest's clean-up of old test folders recurses once
    per level (``shutil.rmtree``) and would fail on these trees in a later session."""
    yield
    subprocess.run(["rm", "-rf", "--", str(tmp_path)], check=False)


@pytest.fixture
def api_database_url() -> str:
    return ""  # SQLite only: what is tested here is the walk, not the store


def _deep(top: Path, depth: int = DEPTH, size: int = 1000) -> None:
    """``top/a/a/.../a`` (``depth`` folders) with a ``size``-byte file ``f`` at the bottom, made by descriptors
    (one held at a time: no path that long is ever looked up)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=fd)
            sub = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
        f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(f, b"x" * size)
        os.close(f)
    finally:
        os.close(fd)


@contextmanager
def _few_descriptors(extra: int = 128) -> Iterator[None]:
    """The soft ``RLIMIT_NOFILE`` of this process at ``extra`` over its highest open descriptor, then back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(n) for n in os.listdir("/proc/self/fd"))
    assert highest + extra < DEPTH  # else the check would prove nothing
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1 + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_usage_and_the_quota_count_a_deep_trees_bytes_and_delete_removes_it(disk_env: DiskEnv,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk_mod, "USAGE_CACHE_S", 0.0)  # the API (in this process) walks on every look
    a = disk_env.alice.http
    assert a.put("/files/top.txt", content=b"t" * 5).status_code == 201
    _deep(disk_env.alice.root / "deep")  # a replica's work: 1000 bytes 3000 folders down
    disk_env.set_quota("alice", 1500)
    with _few_descriptors():
        r = a.get("/usage")
        assert r.status_code == 200, r.text
        assert r.json()["used"] == 1005  # the bottom file counts: it does not escape the quota
        over = a.put("/files/more.bin", content=b"m" * 600)
        assert over.status_code == 413 and over.json()["code"] == "QuotaExceeded"
        gone = a.delete("/files/deep", params={"recursive": "true"})
        assert gone.status_code == 204, gone.text
    assert not (disk_env.alice.root / "deep").exists()
    assert a.get("/usage").json()["used"] == 5
    assert a.put("/files/more.bin", content=b"m" * 600).status_code == 201


def test_the_usage_walk_holds_little_memory_however_deep(tmp_path: Path) -> None:
    root = tmp_path / "disks" / "alice"
    _deep(root / "deep")
    tracemalloc.start()
    try:
        assert Disk(root, 10**9).used() == 1000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024**2, peak  # a small record per level; a path tuple per level made it 36 MB here


def test_a_deleted_users_deep_tree_leaves_the_trash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _deep(data / "disks" / "alice" / "deep")
    with _few_descriptors():
        remove_user_disk(data, "alice")
    assert list(trash_dir(data).iterdir()) == []
    assert not (data / "disks" / "alice").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_hand_over_reaches_every_level_with_a_few_descriptors(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shared = data / "disks" / "alice" / "w"
    _deep(shared / "deep")
    (data / "disks" / "alice" / "private.txt").write_text("not handed over")
    with _few_descriptors():
        assert hand_over(shared, data, NOBODY, NOBODY)
    bottom = os.path.join(shared, "deep", *["a"] * DEPTH, "f")
    fd = os.open(shared / "deep", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(DEPTH):  # down by descriptors: the path is longer than PATH_MAX
            sub = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            assert os.fstat(sub).st_uid == NOBODY
            os.close(fd)
            fd = sub
        assert os.stat("f", dir_fd=fd).st_uid == NOBODY, bottom
    finally:
        os.close(fd)
    assert os.lstat(shared).st_uid == NOBODY
    assert os.lstat(data / "disks" / "alice" / "private.txt").st_uid == 0


def test_a_walk_that_builds_paths_stops_at_the_depth_limit(tmp_path: Path) -> None:
    top = tmp_path / "disks" / "alice" / "model"
    _deep(top, depth=paths.MAX_WALK_DEPTH + 5)
    with paths.opened_root(top) as fd:
        deepest = max(len(parts) for _fd, parts, _st in paths.walk(fd, strict=False))
        assert deepest == paths.MAX_WALK_DEPTH  # what lies deeper is skipped
        with pytest.raises(paths.BadPath, match=f"more than {paths.MAX_WALK_DEPTH} folders deep"):
            for _ in paths.walk(fd):
                pass
    with pytest.raises(paths.BadPath, match="folders deep"):
        publish_dir(BlobStore(tmp_path), top)


def test_a_walk_climbing_back_through_dotdot_never_leaves_its_tree(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the deepest WALK_FDS folders stay open; a folder moved out of the tree while it is walked must not
    lead the walk on into the folder it was moved to (whose ``z`` would be handed over, counted or deleted)."""
    monkeypatch.setattr(paths, "WALK_FDS", 2, raising=False)
    top, outside = tmp_path / "top", tmp_path / "outside"
    level = top
    for _ in range(12):  # each level: a folder "a" (walked first) and a file "z" (after it)
        (level / "a").mkdir(parents=True)
        (level / "z").write_text("mine")
        level = level / "a"
    outside.mkdir()
    (outside / "z").write_text("not mine")
    foreign = os.lstat(outside / "z")
    baseline = len(os.listdir("/proc/self/fd"))
    held, seen = 0, []
    with paths.opened_root(top) as fd:
        for _parent, name, st in paths.scan(fd):
            held = max(held, len(os.listdir("/proc/self/fd")) - baseline)
            seen.append((name, st.st_dev, st.st_ino))
            if len(seen) == 10:  # "a" 10 folders down (1-7 closed by now): move the third out of the tree
                os.rename(top / "a" / "a" / "a", outside / "a")
    assert ("z", foreign.st_dev, foreign.st_ino) not in seen
    assert [name for name, _dev, _ino in seen] == ["a"] * 12 + ["z"] * 10  # the moved folders' own, then top's
    assert held <= 2 + 4  # WALK_FDS, the top's, the one being opened, scandir's, listdir's own
