"""The model market's bytes on a real file system: manifests and digests, content-addressed blobs stored once,
tar and folder publishing refusing what could escape, and the node-local cache (hard links, read-only, LRU)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from arkserve.errors import PermanentError, ValidationFailed
from arkserve.reconciler.modelcache import ModelCache
from arkserve.storage.market import BlobStore, clean_member, manifest_digest, parse_ref, publish_dir, publish_tar
from arkserve.storage.paths import BadPath


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _tar(files: dict[str, bytes], mode: str = "w") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


FILES = {"weights.pth": os.urandom(300_000), "class_indices.json": b'{"0": "daisy"}', "sub/README.md": b"# hi"}


def test_a_manifest_lists_every_file_with_its_sha256_and_the_digest_covers_it(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "data")
    manifest = publish_dir(blobs, _tree(tmp_path / "src", FILES))
    assert [f["path"] for f in manifest] == sorted(FILES)
    for f in manifest:
        assert f["sha256"] == hashlib.sha256(FILES[f["path"]]).hexdigest() and f["size"] == len(FILES[f["path"]])
        assert blobs.path(f["sha256"]).read_bytes() == FILES[f["path"]]
        assert not os.access(blobs.path(f["sha256"]), os.W_OK) or os.getuid() == 0  # blobs are read-only
    digest = manifest_digest(manifest)
    assert digest.startswith("sha256:") and len(digest) == 71
    # the same files from a tar give the same manifest and digest; one changed byte gives another digest
    assert manifest_digest(publish_tar(blobs, _tar(FILES, "w:gz"))) == digest
    changed = {**FILES, "class_indices.json": b'{"0": "daisz"}'}
    assert manifest_digest(publish_tar(blobs, _tar(changed))) != digest
    renamed = {("weights2.pth" if k == "weights.pth" else k): v for k, v in FILES.items()}
    assert manifest_digest(publish_tar(blobs, _tar(renamed))) != digest


def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "data")
    big = os.urandom(4 << 20)
    publish_dir(blobs, _tree(tmp_path / "a", {"w.bin": big, "x.json": b"1"}))
    count, stored = blobs.usage()
    assert (count, stored) == (2, len(big) + 1)
    # a second version, a second model's tar and a copy under another name: no new bytes
    publish_dir(blobs, _tree(tmp_path / "b", {"w.bin": big, "x.json": b"1"}))
    publish_tar(blobs, _tar({"other/name.bin": big}))
    assert blobs.usage() == (count, stored)
    du = sum(p.stat().st_blocks * 512 for p in (tmp_path / "data" / "models").rglob("*") if p.is_file())
    assert du < 2 * len(big)  # measured on disk: one copy (plus block rounding), not three
    assert not list(blobs.tmp.iterdir())  # no temporary left behind


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape", "a/../../b", "a\x00b", "x" * 256])
def test_archive_paths_that_could_escape_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationFailed):
        clean_member(name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name.replace("\x00", "_") if "\x00" in name else name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    buf.seek(0)
    if "\x00" not in name:
        with pytest.raises(ValidationFailed):
            publish_tar(BlobStore(tmp_path), buf)


def test_links_devices_and_garbage_are_refused(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "data")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    buf.seek(0)
    with pytest.raises(PermanentError, match="only regular files"):
        publish_tar(blobs, buf)
    with pytest.raises(PermanentError, match="not a readable tar"):
        publish_tar(blobs, io.BytesIO(b"this is not a tar archive" * 40))
    with pytest.raises(PermanentError, match="no files"):
        publish_tar(blobs, _tar({}))
    src = _tree(tmp_path / "src", {"ok.txt": b"ok"})
    (src / "secret").symlink_to("/etc/passwd")
    with pytest.raises(PermanentError, match="symbolic links"):
        publish_dir(blobs, src)


def test_refs() -> None:
    assert parse_ref("flowers-resnet34@1") == ("flowers-resnet34", "1")
    for bad in ("flowers-resnet34", "@1", "Flowers@1", "a@b@c", "a@"):
        with pytest.raises(ValidationFailed):
            parse_ref(bad)


def test_the_cache_materialises_a_version_once_as_read_only_hard_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    blobs = BlobStore(data)
    manifest = publish_dir(blobs, _tree(tmp_path / "src", FILES))
    digest = manifest_digest(manifest)
    cache = ModelCache(data, limit_bytes=1 << 30)
    seen: list[int] = []
    path = cache.ensure(digest, manifest, seen.append)
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen)
    assert path == data / "model-cache" / digest.removeprefix("sha256:")
    for f in manifest:
        placed = path / f["path"]
        assert placed.read_bytes() == FILES[f["path"]]
        assert placed.stat().st_ino == blobs.path(f["sha256"]).stat().st_ino  # a hard link, not a copy
    if os.getuid() != 0:  # root ignores permission bits; the replica's read-only mount covers that case
        with pytest.raises(PermissionError):
            (path / "new.txt").write_bytes(b"x")
        with pytest.raises(PermissionError):
            (path / "weights.pth").write_bytes(b"x")
    again: list[int] = []
    assert cache.ensure(digest, manifest, again.append) == path and again == []  # warm: nothing fetched
    assert not [p for p in (data / "model-cache").iterdir() if p.name.startswith(".tmp")]


def test_the_cache_evicts_least_recently_used_versions_not_in_use(tmp_path: Path) -> None:
    data = tmp_path / "data"
    blobs = BlobStore(data)
    digests = []
    for i in range(3):
        m = publish_tar(blobs, _tar({"w.bin": bytes([i]) * 1000}))
        digests.append(manifest_digest(m))
        cache = ModelCache(data, limit_bytes=2500)
        path = cache.ensure(digests[-1], m)
        os.utime(path, (1000 + i, 1000 + i))  # i is the order of last use
    assert cache.evict(in_use={digests[0]}) == [digests[1]]  # the oldest is in use: the next one goes
    assert cache.cached(digests[0]) and not cache.cached(digests[1]) and cache.cached(digests[2])
    assert cache.evict(in_use=set()) == []  # fits now
    cache.limit_bytes = 0
    assert cache.evict(in_use={digests[2]}) == [digests[0]]
    assert blobs.path(publish_tar(blobs, _tar({"w.bin": bytes([0]) * 1000}))[0]["sha256"]).exists()  # blobs stay


def test_a_version_a_running_replica_started_with_is_never_evicted(tmp_path: Path) -> None:
    # a rolling update away from v1: the spec names v2 only, but old replicas still read v1 until stopped
    data = tmp_path / "data"
    blobs = BlobStore(data)
    cache = ModelCache(data, limit_bytes=0)
    v1 = publish_tar(blobs, _tar({"w.bin": b"1" * 1000}))
    cache.ensure(manifest_digest(v1), v1)
    cache.pin("svc", "r000001", manifest_digest(v1))
    assert cache.evict(in_use=set()) == [] and cache.cached(manifest_digest(v1))
    cache.unpin("svc", "r000001")  # the old replica stopped
    assert cache.evict(in_use=set()) == [manifest_digest(v1)]


class _SwappingBlobs(BlobStore):
    """Swaps ``folder`` for a link to ``lure`` as the first file is stored: what a replica with a ``:rw``
    mount can do at any moment of a publish, here at a fixed one."""

    def __init__(self, data_dir: Path, folder: Path, lure: Path) -> None:
        super().__init__(data_dir)
        self.folder, self.lure, self.swapped = folder, lure, False

    def put(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        if not self.swapped:
            self.swapped = True
            self.folder.rename(self.folder.with_name("moved-away"))
            self.folder.symlink_to(self.lure)
        return super().put(chunks)


def test_a_folder_swapped_for_a_link_while_published_is_never_followed(tmp_path: Path) -> None:
    secret = b"another user's file\n"
    lure = _tree(tmp_path / "bob", {"b/secret.txt": secret})
    src = _tree(tmp_path / "src", {"a/b/secret.txt": b"decoy", "a/c.txt": b"c"})
    blobs = _SwappingBlobs(tmp_path / "data", src / "a", lure)  # swapped while a/c.txt is stored, inside a/
    manifest = publish_dir(blobs, src)
    assert blobs.swapped
    assert {f["path"]: blobs.path(f["sha256"]).read_bytes() for f in manifest} == {
        "a/b/secret.txt": b"decoy", "a/c.txt": b"c"}  # the folder that was there, not the link's target
    assert not blobs.path(hashlib.sha256(secret).hexdigest()).exists()


def test_a_link_above_the_published_disk_folder_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _tree(data / "disks" / "bob" / "m", {"secret.txt": b"bob's"})
    _tree(data / "disks" / "alice" / "real" / "m", {"ok.txt": b"alice's"})
    (data / "disks" / "alice" / "models").symlink_to(data / "disks" / "bob")  # planted by alice's replica
    blobs = BlobStore(data)
    with pytest.raises(BadPath, match="symbolic link"):
        publish_dir(blobs, data / "disks" / "alice" / "models" / "m")
    assert blobs.usage() == (0, 0)


def test_a_name_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"ok.txt": b"ok"})
    os.close(os.open(os.fsencode(src) + b"/bad\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    with pytest.raises(ValidationFailed, match="not valid UTF-8"):
        publish_dir(BlobStore(tmp_path / "data"), src)
