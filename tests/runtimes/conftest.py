"""Fixtures for the runtime suites: one ``backend`` per runtime kind, a real dockerd for docker.

The docker half needs a running daemon and the locally built test image
(``tests/images/busybox.sh``). Without a daemon the docker tests skip, unless
``ARKSERVE_REQUIRE_DOCKER=1`` (CI): then ``.ci/docker.sh`` is tried and a daemon that still
does not answer fails them.

The kubernetes half runs against a live cluster named by ``ARKSERVE_TEST_KUBECONFIG`` (kind, k3s:
docs/kubernetes.md says how); without one it skips with one line. No cluster runs on the CI machines:
there the kubernetes runtime is checked by its mapping and schema tests (``test_kubernetes_*.py``).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arkserve.runtimes.base import ReplicaInfo, ReplicaSpec, Runtime
from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = Path(__file__).resolve().parent / "app"
TEST_IMAGE = "arkserve-test/busybox:1"
DOCKER_INSTANCE = f"pytest-{os.getpid()}"
PY = sys.executable

BB_SERVE = "mkdir -p /tmp/www; env > /tmp/www/env; echo listening; httpd -f -p $PORT -h /tmp/www & wait"


@dataclass(frozen=True)
class Backend:
    kind: str
    image: str
    make: Callable[[Path], Runtime]
    make_code: str  # the same, as Python source run by a separate process (adoption tests)
    serve: str  # serves GET /env, prints "listening", prints "got SIGTERM" and exits 0 on SIGTERM
    ignore_term: str  # serves like `serve` but ignores SIGTERM
    env_port_is_host_port: bool  # local: PORT is the host port; docker: the declared port
    readonly_mounts: bool
    host: str = "127.0.0.1"  # where replicas are reached; "" = an address of the runtime's own (a Pod IP)

    def spec(self, service: str, replica: str = "r0000a1", command: str | None = None,
             **kw: object) -> ReplicaSpec:
        return ReplicaSpec(service=service, replica=replica, revision="rev1", image=self.image,
                           command=self.serve if command is None else command, port=8000, **kw)  # type: ignore[arg-type]


def _local_backend() -> Backend:
    from arkserve.runtimes.local import LocalRuntime

    return Backend(
        kind="local", image=f"dir:{APP_DIR}", make=lambda d: LocalRuntime(d),
        make_code="from arkserve.runtimes.local import LocalRuntime as R; rt = R(data_dir)",
        serve=f"exec {PY} app.py serve", ignore_term=f"exec {PY} app.py ignore-term",
        env_port_is_host_port=True, readonly_mounts=True)


def _docker_backend() -> Backend:
    from arkserve.runtimes.docker import DockerRuntime

    return Backend(
        kind="docker", image=TEST_IMAGE, make=lambda d: DockerRuntime(d, instance=DOCKER_INSTANCE),
        make_code=("from arkserve.runtimes.docker import DockerRuntime as R; "
                   f"rt = R(data_dir, instance={DOCKER_INSTANCE!r})"),
        serve="trap 'echo got SIGTERM; exit 0' TERM; " + BB_SERVE,
        ignore_term="trap '' TERM; " + BB_SERVE,
        env_port_is_host_port=False, readonly_mounts=True)


def _kube_backend() -> Backend:
    """The contract suite on a live cluster: ``ARKSERVE_TEST_KUBECONFIG`` (and optionally ``ARKSERVE_TEST_KUBE_*``)."""
    import tempfile

    from arkserve.runtimes.kube_mapping import KubeTarget
    from arkserve.runtimes.kubernetes import KubernetesRuntime

    kubeconfig = os.environ.get("ARKSERVE_TEST_KUBECONFIG", "")
    if not kubeconfig:
        pytest.skip("ARKSERVE_TEST_KUBECONFIG is not set: the kubernetes runtime's contract suite needs a live "
                    "cluster (kind, k3s: docs/kubernetes.md); here only its mapping and schemas are tested")
    # mounts come from a claim whose volume is the node's temp dir, where the mount test makes its model dir
    target = KubeTarget(namespace=os.environ.get("ARKSERVE_TEST_KUBE_NAMESPACE", "default"),
                        claim=os.environ.get("ARKSERVE_TEST_KUBE_CLAIM", "arkserve-test-tmp"),
                        shared_root=tempfile.gettempdir(), instance=DOCKER_INSTANCE, grace_s=10.0)
    return Backend(
        kind="kubernetes", image=os.environ.get("ARKSERVE_TEST_KUBE_IMAGE", TEST_IMAGE),
        make=lambda d: KubernetesRuntime(d, target, kubeconfig=kubeconfig, start_timeout_s=120),
        make_code=("from arkserve.runtimes.kubernetes import KubernetesRuntime as R\n"
                   "from arkserve.runtimes.kube_mapping import KubeTarget\n"
                   f"rt = R(data_dir, KubeTarget(**{target.__dict__!r}), kubeconfig={kubeconfig!r})"),
        serve="trap 'echo got SIGTERM; exit 0' TERM; " + BB_SERVE,
        ignore_term="trap '' TERM; " + BB_SERVE,
        env_port_is_host_port=False, readonly_mounts=True, host="")


def _daemon_answers() -> bool:
    import docker

    ok = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the SDK leaks the socket of a failed connect
        try:
            client = docker.from_env(timeout=5)
            ok = bool(client.ping())
            client.close()
        except Exception:
            pass
        gc.collect()
    return ok


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    required = os.environ.get("ARKSERVE_REQUIRE_DOCKER") == "1"
    if not _daemon_answers():
        if required:  # try to start one before failing
            subprocess.run([str(ROOT / ".ci" / "docker.sh")], check=False)
        if not _daemon_answers():
            unavailable("ARKSERVE_REQUIRE_DOCKER", "no Docker daemon answers (.ci/docker.sh starts one)")
    build = subprocess.run([str(ROOT / "tests" / "images" / "busybox.sh"), TEST_IMAGE],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"cannot build {TEST_IMAGE}: {build.stderr}")


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker),
                        pytest.param("kubernetes", marks=pytest.mark.kubernetes)])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "kubernetes":
        return _kube_backend()
    if request.param == "docker":
        request.getfixturevalue("docker_daemon")
        return _docker_backend()
    return _local_backend()


@pytest.fixture
def service() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def runtime(backend: Backend, data_dir: Path, service: str) -> Iterator[Runtime]:
    rt = backend.make(data_dir)
    yield rt
    for info in rt.list():
        if info.service == service:
            rt.stop(info.service, info.replica, grace_s=0)
    rt.close()


def wait_until(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def http_get(info: ReplicaInfo, path: str = "/env", timeout: float = 2.0) -> str:
    with urllib.request.urlopen(f"http://{info.host}:{info.port}{path}", timeout=timeout) as resp:
        return str(resp.read().decode())


def wait_http(info: ReplicaInfo, timeout: float = 15.0) -> dict[str, str]:
    """Poll until the replica answers GET /env; returns the environment it reports."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = http_get(info)
            return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
