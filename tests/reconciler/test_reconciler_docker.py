"""The reconciler on the real Docker runtime: scaling, kill -9 of a container, adoption after a restart.

Replicas run the locally built busybox image (tests/images/busybox.sh) serving its environment with httpd.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from arkserve.schemas import ServiceSpec
from arkserve.store import services as service_store
from tests.reconciler.conftest import Cluster, running_cluster
from tests.runtimes.conftest import DOCKER_INSTANCE, TEST_IMAGE, docker_daemon

__all__ = ["docker_daemon"]  # the fixture that ensures the daemon and the test image

pytestmark = pytest.mark.docker
SERVE = "mkdir -p /tmp/www; env > /tmp/www/env; echo ok > /tmp/www/healthz; exec httpd -f -p $PORT -h /tmp/www"


@pytest.fixture
def docker_cluster(tmp_path: Path, docker_daemon: None) -> Iterator[Cluster]:
    from arkserve.runtimes.docker import DockerRuntime

    with running_cluster(tmp_path, lambda data: DockerRuntime(data, instance=DOCKER_INSTANCE)) as c:
        yield c


def _create(c: Cluster, name: str, replicas: int) -> None:
    spec = ServiceSpec(image=TEST_IMAGE, port=8000, command=SERVE, health_path="/healthz", startup_timeout_s=20)
    with c.store.begin() as conn:
        service_store.create(conn, name, c.owner_id, spec.model_dump(), replicas, None)


def _env(host: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/env", timeout=5) as resp:
        return resp.read().decode()


def test_scale_kill_and_adopt_on_docker(docker_cluster: Cluster) -> None:
    c = docker_cluster
    _create(c, "dsvc", 1)
    for n in (1, 3, 0, 2):
        c.scale("dsvc", n)
        c.wait(f"{n} ready", lambda n=n: len(c.ready("dsvc")) == n == len(c.replicas("dsvc")), timeout=60)
    for rep in c.ready("dsvc"):
        assert rep.host == "127.0.0.1"  # published on loopback only
        env = _env(rep.host, rep.port or 0)
        assert f"ARK_REPLICA={rep.id}" in env and "ARK_SERVICE=dsvc" in env and "PORT=8000" in env
    victim, other = c.ready("dsvc")
    subprocess.run(["docker", "kill", "--signal", "KILL", victim.runtime_id], check=True, capture_output=True)
    t0 = time.monotonic()
    c.wait("victim noticed", lambda: any(r.id == victim.id and r.state != "ready" for r in c.replicas("dsvc")))
    c.wait("2 ready again", lambda: len(c.ready("dsvc")) == 2, timeout=30)
    assert time.monotonic() - t0 < 5.0
    assert {r.id: r.runtime_id for r in c.ready("dsvc")}[other.id] == other.runtime_id
    before = {r.id: r.runtime_id for r in c.ready("dsvc")}
    c.stop()
    c.start()
    time.sleep(1.5)
    assert {r.id: r.runtime_id for r in c.ready("dsvc")} == before
    assert len(c.runtime.list()) == 2


def test_an_image_the_daemon_cannot_find_says_so_in_the_reason(docker_cluster: Cluster) -> None:
    c = docker_cluster
    c.create("ghost", 1, image="arkserve-test/no-such-image:1", command="true")
    c.wait("failed", lambda: (c.service("ghost").status == "failed"), timeout=60)  # type: ignore[union-attr]
    svc = c.service("ghost")
    assert svc is not None and svc.reason == "ImageNotFound" and "no-such-image" in svc.message, svc
