"""Services with mounts on real runtimes: a model-market version at /ark/models (from the node-local cache,
fetched once with progress events) and a network-disk folder at /data. The app reads both; its write to the
model mount fails; ``ARK_MODEL_DIR`` names the first mount. Docker (bind mounts) and local (bubblewrap); on the
local runtime under root, a writable disk mount is written by a replica running as nobody."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arkserve.api.mounts import resolve
from arkserve.storage.market import BlobStore, manifest_digest, publish_dir
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from tests.reconciler.conftest import Cluster, running_cluster
from tests.runtimes.conftest import DOCKER_INSTANCE, TEST_IMAGE, docker_daemon

__all__ = ["docker_daemon"]

MOUNTS = [{"source": "model", "ref": "flowers-resnet34@1", "mount_path": "/ark/models"},
          {"source": "disk", "ref": "/datasets/flowers", "mount_path": "/data"}]

# the end of each local app below: serve its ``report`` as JSON on $PORT
SERVE_REPORT = '''body = json.dumps(report).encode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''

# the local app: reads both mounts, tries to write into the model mount, serves what happened
LOCAL_APP = '''
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def attempt():
    try:
        with open("/ark/models/new.txt", "w") as f:
            f.write("x")
        return "wrote"
    except OSError as exc:
        return "refused: " + exc.strerror
report = {"model": open("/ark/models/weights.txt").read(), "classes": open("/ark/models/sub/classes.json").read(),
          "data": open("/data/in.txt").read(), "model_write": attempt(), "model_dir": os.environ.get("ARK_MODEL_DIR")}
''' + SERVE_REPORT

# the docker app (busybox): the same, as files served by httpd
DOCKER_APP = ("mkdir -p /tmp/www; cat /ark/models/weights.txt > /tmp/www/model; cat /data/in.txt > /tmp/www/data; "
              "if (echo x > /ark/models/new.txt) 2>/tmp/www/model_write_error; then echo wrote > /tmp/www/model_write; "
              "else echo refused > /tmp/www/model_write; fi; echo out > /data/out.txt; "
              "echo $ARK_MODEL_DIR > /tmp/www/model_dir; echo ok > /tmp/www/healthz; "
              "exec httpd -f -p $PORT -h /tmp/www")


def _publish(c: Cluster, tmp_path: Path) -> str:
    src = tmp_path / "weights-src"
    (src / "sub").mkdir(parents=True)
    (src / "weights.txt").write_text("resnet34 weights v1")
    (src / "sub" / "classes.json").write_text('{"0": "daisy"}')
    manifest = publish_dir(BlobStore(c.data_dir), src)
    with c.store.begin() as conn:
        m = model_store.create(conn, "flowers-resnet34", c.owner_id, {"task": "image-classification"}, True)
        model_store.add_version(conn, m.id, "1", manifest_digest(manifest), manifest)
    disk = c.data_dir / "disks" / "owner" / "datasets" / "flowers"
    disk.mkdir(parents=True)
    (disk / "in.txt").write_text("a flower dataset")
    disk.chmod(0o777)  # the replica may run as another uid (the local sandbox drops root to nobody)
    return manifest_digest(manifest)


def _create(c: Cluster, name: str, replicas: int, **spec: Any) -> None:
    full = c.spec(mounts=MOUNTS, **spec)
    with c.store.begin() as conn:
        full = resolve(conn, c.data_dir, user_store.get_by_id(conn, c.owner_id), full)
        service_store.create(conn, name, c.owner_id, full, replicas, None)


def _get(rep: Any, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://{rep.host}:{rep.port}{path}", timeout=5) as resp:
        return str(resp.read().decode())


def _fetched_once_then_warm(c: Cluster, name: str, digest: str) -> None:
    fetching = c.event_messages(name, "fetching")
    assert fetching[0].startswith("fetching model flowers-resnet34@1") and fetching[0].endswith(" 0%"), fetching
    assert fetching[-1].endswith(" 100%") and len(fetching) <= 6
    cache = c.data_dir / "model-cache" / digest.removeprefix("sha256:")
    assert (cache / "weights.txt").read_text() == "resnet34 weights v1"
    c.scale(name, 2)  # scale-up: the cache is warm, nothing is fetched again
    c.wait("2 ready", lambda: len(c.ready(name)) == 2, timeout=60)
    assert c.event_messages(name, "fetching") == fetching


@pytest.mark.docker
def test_a_market_model_and_a_disk_folder_on_docker(tmp_path: Path, docker_daemon: None) -> None:
    from arkserve.runtimes.docker import DockerRuntime

    with running_cluster(tmp_path, lambda data: DockerRuntime(data, instance=DOCKER_INSTANCE)) as c:
        digest = _publish(c, tmp_path)
        _create(c, "mnt", 1, image=TEST_IMAGE, command=DOCKER_APP, startup_timeout_s=20)
        c.wait("ready", lambda: len(c.ready("mnt")) == 1, timeout=60)
        rep = c.ready("mnt")[0]
        assert _get(rep, "/model").strip() == "resnet34 weights v1"
        assert _get(rep, "/data").strip() == "a flower dataset"
        assert _get(rep, "/model_write").strip() == "refused"
        assert "Read-only file system" in _get(rep, "/model_write_error")
        assert _get(rep, "/model_dir").strip() == "/ark/models"
        assert not (c.data_dir / "model-cache" / digest[7:] / "new.txt").exists()
        assert not (c.data_dir / "disks" / "owner" / "datasets" / "flowers" / "out.txt").exists()  # /data is ro
        _fetched_once_then_warm(c, "mnt", digest)


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[Cluster]:
    from arkserve.runtimes.local import LocalRuntime

    with running_cluster(tmp_path, LocalRuntime) as c:
        yield c


def test_a_market_model_and_a_disk_folder_on_the_local_runtime(local_cluster: Cluster, tmp_path: Path) -> None:
    c = local_cluster
    digest = _publish(c, tmp_path)
    (c.app_dir / "mounts_app.py").write_text(LOCAL_APP)
    _create(c, "mnt", 1, command=f"{sys.executable} mounts_app.py", health_path=None)
    c.wait("ready", lambda: len(c.ready("mnt")) == 1, timeout=30)
    report = json.loads(_get(c.ready("mnt")[0]))
    assert report["model"] == "resnet34 weights v1" and report["classes"] == '{"0": "daisy"}'
    assert report["data"] == "a flower dataset" and report["model_dir"] == "/ark/models"
    assert report["model_write"].startswith("refused"), report
    _fetched_once_then_warm(c, "mnt", digest)


# the local app for a writable disk mount: writes a new file and appends to one it found, says who it is
RW_APP = '''
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def attempt():
    try:
        with open("/out/result.txt", "w") as f:
            f.write("written by the replica")
        with open("/out/old.txt", "a") as f:
            f.write(" + appended")
        os.makedirs("/out/sub/deeper", exist_ok=True)
        return "wrote"
    except OSError as exc:
        return "refused: " + exc.strerror
report = {"write": attempt(), "uid": os.getuid()}
''' + SERVE_REPORT


def test_a_writable_disk_mount_on_the_local_runtime_as_root(local_cluster: Cluster, tmp_path: Path) -> None:
    """Under root the replica runs as nobody; the disk folder (made by root, 0755, a root-owned file in it)
    is handed to the replica's uid before it starts, so it writes there; a link inside changes nothing."""
    c = local_cluster
    out = c.data_dir / "disks" / "owner" / "results"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("found")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the disk's")
    (out / "link").symlink_to(outside)
    (c.app_dir / "rw_app.py").write_text(RW_APP)
    full = c.spec(mounts=[{"source": "disk", "ref": "/results", "mount_path": "/out", "read_only": False}],
                  command=f"{sys.executable} rw_app.py", health_path=None)
    with c.store.begin() as conn:
        full = resolve(conn, c.data_dir, user_store.get_by_id(conn, c.owner_id), full)
        service_store.create(conn, "rw", c.owner_id, full, 1, None)
    c.wait("ready", lambda: len(c.ready("rw")) == 1, timeout=30)
    report = json.loads(_get(c.ready("rw")[0]))
    assert report["write"] == "wrote", report
    assert (out / "result.txt").read_text() == "written by the replica"
    assert (out / "old.txt").read_text() == "found + appended" and (out / "sub" / "deeper").is_dir()
    assert outside.stat().st_uid == os.getuid()  # the link was not followed
    if os.geteuid() == 0:
        assert report["uid"] != 0 and (out / "result.txt").stat().st_uid == report["uid"]


# the local app for the swap tests: lists its /data (and says whether it could write there)
LIST_APP = '''
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
report = {"data": sorted(os.listdir("/data"))}
''' + SERVE_REPORT


@pytest.mark.parametrize("legacy", [False, True])
def test_a_disk_folder_swapped_for_a_link_before_the_sandbox_binds_it_is_not_followed(
        local_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy: bool) -> None:
    """Another replica of the user with ``datasets`` mounted read-write swaps ``datasets/flowers`` for a link
    to the host's ``/`` (here: a folder with a marker) after the reconciler built the spec (the check) and
    opened the folder, just as bwrap is spawned: the replica sees the folder that was checked, never the
    link's target (bwrap binds the descriptor; a path-based bind showed the marker, writable with ``:rw``)."""
    c = local_cluster
    flowers = c.data_dir / "disks" / "owner" / "datasets" / "flowers"
    flowers.mkdir(parents=True)
    (flowers / "in.txt").write_text("a flower dataset")
    host = tmp_path / "host"
    host.mkdir()
    (host / "marker.txt").write_text("the host's")
    popen = subprocess.Popen

    def swap_then_popen(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        if argv[0].endswith("bwrap") and "/data" in argv and not flowers.is_symlink():
            os.rename(flowers, flowers.with_name("flowers.orig"))
            os.symlink(host, flowers)
        return popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", swap_then_popen)
    (c.app_dir / "list_app.py").write_text(LIST_APP)
    disk = {"source": "disk", "ref": "/datasets/flowers", "mount_path": "/data"}
    where: dict[str, Any] = {"model": disk} if legacy else {"mounts": [{**disk, "read_only": False}]}
    full = c.spec(**where, command=f"{sys.executable} list_app.py", health_path=None)
    with c.store.begin() as conn:
        full = resolve(conn, c.data_dir, user_store.get_by_id(conn, c.owner_id), full)
        service_store.create(conn, "swap", c.owner_id, full, 1, None)
    c.wait("ready", lambda: len(c.ready("swap")) == 1, timeout=30)
    assert json.loads(_get(c.ready("swap")[0])) == {"data": ["in.txt"]}
    assert flowers.is_symlink()  # the swap happened
