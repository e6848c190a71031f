"""Only a complete version is ever mounted from the node-local model cache (review 5, mounts finding 4): an
empty folder left under a version's digest (an eviction raced a warm start's check, on older code) or an entry
that lost a file is built again from the manifest, never mounted as it is; nothing is built without the
manifest. Real cache, blobs, store (SQLite and PostgreSQL) and :class:`SpecBuilder`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arkserve.reconciler.modelcache import ModelCache
from arkserve.store.db import Store
from tests.reconciler.test_modelcache_pins import Host, _version, make_host


@pytest.fixture
def host(store: Store, tmp_path: Path) -> Host:
    return make_host(store, tmp_path)


def test_an_empty_folder_under_a_versions_digest_is_built_again_not_mounted(host: Host) -> None:
    digest, _ = host.publish("alice", "amodel", "1", b"alice v1 weights")
    svc = host.service("alice", "asvc", "amodel@1")
    cache = ModelCache(host.data, limit_bytes=1 << 30)
    empty = cache.path(digest)
    empty.mkdir(parents=True)  # what the race left: the version's folder, read-only and empty
    empty.chmod(0o555)

    spec = host.specs(limit_bytes=1 << 30).build(svc, "r00a0001")
    source = Path(spec.mounts[0].source)
    assert source == empty and (source / "w.bin").read_bytes() == b"alice v1 weights"
    fetching = [m for _, k, m in host.events if k == "fetching"]
    assert fetching and fetching[-1].endswith(" 100%"), host.events

    host.events.clear()  # warm now: the next replica mounts it without fetching
    assert Path(host.specs(limit_bytes=1 << 30).build(svc, "r00a0002").mounts[0].source) == empty
    assert [k for _, k, _ in host.events] == []


def test_an_entry_that_lost_a_file_is_built_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest, manifest = _version(data, tmp_path, b"v1 weights")
    cache = ModelCache(data, limit_bytes=1 << 30)
    folder = cache.ensure(digest, manifest)
    folder.chmod(0o755)
    (folder / "w.bin").unlink()  # gone (by hand, a disk fault): the entry is no longer the version
    assert cache.ensure(digest, None) is None  # not mounted as it is: the caller fetches with the manifest
    assert cache.ensure(digest, manifest) == folder and (folder / "w.bin").read_bytes() == b"v1 weights"
    assert cache.ensure(digest, None) == folder


def test_nothing_is_built_without_the_manifest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest, manifest = _version(data, tmp_path, b"v1 weights")
    cache = ModelCache(data, limit_bytes=0)
    cache.ensure(digest, manifest)
    assert cache.evict(in_use=set()) == [digest]  # evicted between a warm start's pin and its look
    assert cache.ensure(digest, None) is None and not cache.cached(digest)
    assert not [p for p in os.listdir(cache.root) if not p.startswith(".")]
