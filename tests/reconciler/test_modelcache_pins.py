"""The node-local model cache never evicts a version a running replica still uses, whatever happened to the
reconciler in between (review 5, mounts finding 2): a pin made by another (earlier) reconciler process holds,
a folder bound into a running bubblewrap sandbox holds with no pin at all, a canary's version is in use, a
pin made while an eviction runs holds, and a pin of a replica gone from the store is dropped. The eviction event
on the fetching user's service names no version (it may be another user's private model).

Real parts: the model cache on a temporary data dir, blobs from the real publish, a real store (SQLite and
PostgreSQL), the real :class:`SpecBuilder`, a real ``bwrap`` sandbox and a second Python process."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from arkserve.api.mounts import resolve
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.modelcache import ModelCache
from arkserve.reconciler.specs import SpecBuilder
from arkserve.schemas import ServiceSpec
from arkserve.storage.market import BlobStore, manifest_digest, publish_dir
from arkserve.store import canary as canary_store
from arkserve.store import instance_types
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.services import ReplicaRow, ServiceRow

ROOT = Path(__file__).resolve().parents[2]


def _version(data: Path, tmp: Path, content: bytes) -> tuple[str, list[dict[str, Any]]]:
    src = tmp / f"src-{hashlib.sha256(content).hexdigest()[:16]}"
    src.mkdir(parents=True)
    (src / "w.bin").write_bytes(content)
    manifest = publish_dir(BlobStore(data), src)
    return manifest_digest(manifest), manifest


def test_a_pin_made_by_an_earlier_reconciler_process_holds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest, manifest = _version(data, tmp_path, b"pinned by an earlier process")
    cache = ModelCache(data, limit_bytes=0)
    cache.ensure(digest, manifest)
    pin = (f"from pathlib import Path; from arkserve.reconciler.modelcache import ModelCache; "
           f"ModelCache(Path({str(data)!r}), 0).pin('svc', 'r0000001', {digest!r})")
    subprocess.run([sys.executable, "-c", pin], check=True, cwd=ROOT)  # then that process is gone (a restart)
    assert cache.evict(in_use=set()) == [] and cache.cached(digest)
    cache.unpin("svc", "r0000001")  # the replica stopped
    assert cache.evict(in_use=set()) == [digest] and not cache.cached(digest)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_folder_bound_into_a_running_sandbox_is_never_evicted_even_unpinned(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest, manifest = _version(data, tmp_path, b"v1 weights")
    cache = ModelCache(data, limit_bytes=0)
    folder = cache.ensure(digest, manifest)
    with subprocess.Popen(
            ["bwrap", "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/", "--dev", "/dev",
             "--proc", "/proc", "--tmpfs", "/tmp", "--ro-bind", str(folder), "/tmp/models",
             "sh", "-c", "cat /tmp/models/w.bin; echo; exec sleep 60"],
            stdout=subprocess.PIPE, text=True, start_new_session=True) as sandbox:
        try:
            assert sandbox.stdout is not None
            assert sandbox.stdout.readline().strip() == "v1 weights"  # bound and read inside the sandbox
            assert cache.evict(in_use=set()) == [] and cache.cached(digest)  # no pin: the bind holds it
        finally:
            os.killpg(sandbox.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # the sandbox's processes go with it, then its mount namespace
    while cache.evict(in_use=set()) != [digest]:
        assert time.monotonic() < deadline, "the sandbox's bind stayed after it was killed"
        time.sleep(0.05)
    assert not cache.cached(digest)


def test_a_pin_made_while_an_eviction_runs_holds(tmp_path: Path) -> None:
    data = tmp_path / "data"
    digest, manifest = _version(data, tmp_path, b"pinned meanwhile")

    class PinnedMeanwhile(ModelCache):
        """A replica start pins the version just after the eviction read the pins (another worker thread)."""

        calls = 0

        def pinned(self) -> set[str]:
            seen = super().pinned()
            if self.calls == 0:
                self.pin("svc", "r0000002", digest)
            self.calls += 1
            return seen

    cache = PinnedMeanwhile(data, limit_bytes=0)
    cache.ensure(digest, manifest)
    assert cache.evict(in_use=set()) == [] and cache.cached(digest)
    assert (cache.path(digest) / "w.bin").read_bytes() == b"pinned meanwhile"  # put back whole
    cache.unpin("svc", "r0000002")


@dataclass
class Host:
    store: Store
    data: Path
    tmp: Path
    users: dict[str, int] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (service, kind, message)

    def specs(self, limit_bytes: int) -> SpecBuilder:
        return SpecBuilder(self.store, "local", ReconcilerConfig(model_cache_bytes=limit_bytes), self.data,
                           lambda svc, kind, message, replica="": self.events.append((svc.name, kind, message)))

    def publish(self, owner: str, name: str, version: str, content: bytes) -> tuple[str, list[dict[str, Any]]]:
        digest, manifest = _version(self.data, self.tmp, content)
        with self.store.begin() as conn:
            model = model_store.find(conn, name) or model_store.create(conn, name, self.users[owner], {}, False)
            model_store.add_version(conn, model.id, version, digest, manifest)
        return digest, manifest

    def spec(self, owner: str, ref: str) -> dict[str, Any]:
        spec = ServiceSpec.model_validate({"image": "/usr/bin", "port": 8000, "command": "python3 app.py", "mounts": [
            {"source": "model", "ref": ref, "mount_path": "/ark/models"}]}).model_dump()
        with self.store.read() as conn:
            return resolve(conn, self.data, user_store.get_by_id(conn, self.users[owner]), spec)

    def service(self, owner: str, name: str, ref: str, canary: str = "") -> ServiceRow:
        spec = self.spec(owner, ref)
        with self.store.begin() as conn:
            service_store.create(conn, name, self.users[owner], spec, 1, None)
            if canary:
                canary_store.set_canary(conn, service_store.get(conn, name), self.spec(owner, canary), 50)
            return service_store.get(conn, name)

    def replica(self, svc: ServiceRow, replica_id: str) -> None:
        with self.store.begin() as conn:
            service_store.save_replica(conn, ReplicaRow(id=replica_id, service_id=svc.id, revision="x",
                                                        state="ready"), routing_changed=False)


def make_host(store: Store, tmp_path: Path) -> Host:
    """A store with the seed instance types and two plain users, alice and bob, over a data dir."""
    h = Host(store, tmp_path / "data", tmp_path)
    with store.begin() as conn:
        instance_types.seed(conn, [])
        for name in ("alice", "bob"):
            h.users[name] = user_store.create(conn, name, "h", "user").id
    return h


@pytest.fixture
def host(store: Store, tmp_path: Path) -> Host:
    return make_host(store, tmp_path)


def _age(cache: ModelCache, *digests: str) -> None:
    """Last used in this order (the first is the least recently used)."""
    for i, d in enumerate(digests):
        os.utime(cache.path(d), (1000 + i, 1000 + i))


def test_a_canary_version_stays_when_another_users_cold_fetch_evicts(host: Host) -> None:
    """alice's canary replicas read amodel@3 (their pins lost with a restart); bob's cold fetch makes room."""
    v1, m1 = host.publish("alice", "amodel", "1", b"alice v1")
    v3, m3 = host.publish("alice", "amodel", "3", b"alice v3 canary")
    old, mold = host.publish("alice", "oldmodel", "1", b"alice's private, unused")
    host.publish("bob", "bobmodel", "1", b"bob v1")
    host.service("alice", "asvc", "amodel@1", canary="amodel@3")
    bsvc = host.service("bob", "bsvc", "bobmodel@1")
    cache = ModelCache(host.data, limit_bytes=1)
    for d, m in ((v1, m1), (v3, m3), (old, mold)):
        cache.ensure(d, m)  # materialised for alice's replicas by an earlier reconciler process
    _age(cache, v3, old, v1)  # the canary's version is the least recently used

    spec = host.specs(limit_bytes=1).build(bsvc, "r00b0001")
    assert (Path(spec.mounts[0].source) / "w.bin").read_bytes() == b"bob v1"
    assert cache.cached(v3) and (cache.path(v3) / "w.bin").read_bytes() == b"alice v3 canary"
    assert cache.cached(v1) and not cache.cached(old)  # only the version nothing mounts went
    evicted = [(s, m) for s, k, m in host.events if k == "evicted"]
    assert len(evicted) == 1 and evicted[0][0] == "bsvc", host.events
    for digest in (old, v3, v1):  # alice's private versions are not named to bob
        assert digest.removeprefix("sha256:")[:12] not in evicted[0][1], evicted
    assert "sha256" not in evicted[0][1]


def test_a_pin_of_a_replica_gone_from_the_store_is_dropped(host: Host) -> None:
    """A pin left by a replica stopped while no reconciler ran (an orphan) is dropped at the next cold fetch;
    the pin of a replica whose row is there holds."""
    gone, mgone = host.publish("alice", "gonemodel", "1", b"mounted by a replica long gone")
    held, mheld = host.publish("alice", "heldmodel", "1", b"mounted by a running replica")
    host.publish("bob", "bobmodel", "1", b"bob v1")
    asvc = host.service("alice", "asvc", "heldmodel@1")
    bsvc = host.service("bob", "bsvc", "bobmodel@1")
    host.replica(asvc, "r00a0001")
    cache = ModelCache(host.data, limit_bytes=1)
    for d, m in ((gone, mgone), (held, mheld)):
        cache.ensure(d, m)
    cache.pin("ghost", "r0dead01", gone)  # its service and replica rows are gone
    cache.pin("asvc", "r00a0001", held)
    with host.store.begin() as conn:  # asvc moved on to another version: only the pin holds heldmodel@1
        svc = service_store.get(conn, "asvc")
        service_store.update_desired(conn, svc, spec={**svc.spec, "mounts": []})

    host.specs(limit_bytes=1).build(bsvc, "r00b0001")
    assert not cache.cached(gone) and ("ghost", "r0dead01") not in cache.pin_keys()
    assert cache.cached(held) and ("asvc", "r00a0001") in cache.pin_keys()
    cache.unpin("asvc", "r00a0001")
