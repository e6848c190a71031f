"""A ``disk:`` mount whose folder (or a folder above it) is now a symbolic link does not start: ``BadPath``,
with a clear ``crashed`` event, never the link's target mounted (review 5, mounts finding 6; docs/storage.md
"Mounts": "a link there now: the start fails, BadPath"). The check builds the path as written and opens it
from the disk root without following links, as the runtime does. Real files, a real reconciler and the local
runtime (bubblewrap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arkserve.api.mounts import resolve
from arkserve.reconciler.specs import disk_mount
from arkserve.runtimes.local import LocalRuntime
from arkserve.storage.paths import BadPath
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from tests.reconciler.conftest import running_cluster


def _disk(data: Path) -> Path:
    w = data / "disks" / "alice" / "w"
    (w / "data").mkdir(parents=True)
    (w / "other").mkdir()
    (w / "other" / "x.txt").write_text("not the mounted folder")
    return w


@pytest.mark.parametrize("swapped", ["w/data", "w"])
def test_a_link_on_the_way_refuses_the_mount(tmp_path: Path, swapped: str) -> None:
    data = tmp_path / "data"
    _disk(data)
    m = disk_mount(data, "alice", "/w/data", "/data", False)  # a plain folder: mounted by the path as written
    assert m.source == str((data / "disks").resolve() / "alice" / "w" / "data")
    link = data / "disks" / "alice" / swapped
    link.rename(link.with_name(link.name + ".moved"))
    link.symlink_to("other" if swapped == "w/data" else "w.moved")  # inside alice's own disk
    with pytest.raises(BadPath) as e:
        disk_mount(data, "alice", "/w/data", "/data", False)
    assert "symbolic link" in e.value.message and "/w/data" in e.value.message, e.value.message


def test_a_service_whose_disk_folder_became_a_link_does_not_start(tmp_path: Path) -> None:
    """A running service's folder is swapped for a link to a sibling (by a replica with the parent mounted
    ``:rw``); its next start fails ``BadPath`` and says why, instead of mounting the sibling."""
    with running_cluster(tmp_path, LocalRuntime) as c:
        w = _disk(c.data_dir)
        spec = c.spec(mounts=[{"source": "disk", "ref": "/w/data", "mount_path": "/data"}])
        with c.store.begin() as conn:
            alice = user_store.create(conn, "alice", "h", "user")
            service_store.create(conn, "ro1", alice.id, resolve(conn, c.data_dir, alice, spec), 1, None)
        c.wait("ready", lambda: len(c.ready("ro1")) == 1, timeout=30)

        (w / "data").rename(w / "data.moved")
        (w / "data").symlink_to("other")
        c.scale("ro1", 0)
        c.wait("stopped", lambda: not c.replicas("ro1"), timeout=30)
        c.scale("ro1", 1)  # the next start
        c.wait("refused", lambda: any("BadPath" in m for m in c.event_messages("ro1", "crashed")), timeout=30)
        refused = next(m for m in c.event_messages("ro1", "crashed") if "BadPath" in m)
        assert "cannot start" in refused and "/w/data" in refused and "symbolic link" in refused, refused
        assert c.ready("ro1") == []
