"""Docker-runtime specifics: what the container looks like on the daemon, GPUs, an absent daemon."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from arkserve.errors import RuntimeUnavailable, TemporaryError, ValidationFailed
from arkserve.runtimes.base import Mount, ReplicaPhase, ReplicaSpec
from arkserve.runtimes.docker import DockerRuntime
from arkserve.runtimes.factory import make_runtime

from .conftest import BB_SERVE, DOCKER_INSTANCE, TEST_IMAGE, wait_http, wait_until


@pytest.fixture
def rt(docker_daemon: None, tmp_path: Path) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(tmp_path, instance=DOCKER_INSTANCE)
    yield runtime
    for info in runtime.list():
        if info.service == "dsvc":
            runtime.stop(info.service, info.replica, grace_s=0)
    runtime.close()


def spec(**kw: object) -> ReplicaSpec:
    base: dict[str, object] = {"service": "dsvc", "replica": "r0000d1", "revision": "rev9", "image": TEST_IMAGE,
                               "command": "sleep 300", "port": 8000}
    return ReplicaSpec(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.docker
def test_container_name_labels_limits_port_and_mounts(rt: DockerRuntime, tmp_path: Path) -> None:
    info = rt.start(spec(cpus=0.5, memory_mb=64, mounts=(Mount(str(tmp_path), "/model"),)))
    attrs = docker.from_env().containers.get(info.runtime_id).attrs
    assert attrs["Name"] == "/ark-dsvc-r0000d1"
    labels = attrs["Config"]["Labels"]
    assert {k: labels[k] for k in ("ark.managed", "ark.service", "ark.replica", "ark.revision", "ark.instance")} == {
        "ark.managed": "1", "ark.service": "dsvc", "ark.replica": "r0000d1", "ark.revision": "rev9",
        "ark.instance": DOCKER_INSTANCE}
    host = attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 * 1024
    assert host["Mounts"][0]["ReadOnly"] is True
    binding = attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) == info.port
    assert attrs["Config"]["Entrypoint"] == ["/bin/sh", "-c"] and attrs["Config"]["Cmd"] == ["sleep 300"]
    assert "ARK_MODEL_DIR=/model" in attrs["Config"]["Env"]


@pytest.mark.docker
def test_other_instances_do_not_see_each_other(rt: DockerRuntime, tmp_path: Path) -> None:
    rt.start(spec())
    other = DockerRuntime(tmp_path / "other", instance="someone-else")
    try:
        assert other.inspect("dsvc", "r0000d1") is None
        assert all(i.service != "dsvc" for i in other.list())
    finally:
        other.close()


@pytest.mark.docker
def test_gpus_without_a_gpu_runtime_is_temporary(rt: DockerRuntime) -> None:
    if docker.from_env().info().get("Runtimes", {}).get("nvidia"):
        pytest.skip("this host has an NVIDIA container runtime")
    with pytest.raises(TemporaryError, match="insufficient GPUs: want 1"):
        rt.start(spec(gpus=1))
    assert rt.inspect("dsvc", "r0000d1") is None


@pytest.mark.docker
def test_restart_after_exit_replaces_the_container(rt: DockerRuntime) -> None:
    first = rt.start(spec(command="exit 0"))
    wait_until(lambda: (i := rt.inspect("dsvc", "r0000d1")) is not None and i.phase is ReplicaPhase.EXITED)
    second = rt.start(spec(command=BB_SERVE))
    assert second.runtime_id != first.runtime_id
    wait_http(second)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the SDK leaks the socket of a failed connect
def test_unreachable_daemon_is_runtime_unavailable(tmp_path: Path) -> None:
    rt = DockerRuntime(tmp_path, "unix:///nonexistent/docker.sock")  # built fine: connects on first use
    try:
        with pytest.raises(RuntimeUnavailable, match="unreachable"):
            rt.list()
        with pytest.raises(RuntimeUnavailable):
            rt.start(spec())
        with pytest.raises(RuntimeUnavailable):
            rt.stop("dsvc", "r0000d1")
    finally:
        rt.close()
        gc.collect()


def test_factory_builds_each_kind(tmp_path: Path) -> None:
    assert make_runtime("local", tmp_path).name == "local"
    rt = make_runtime("docker", tmp_path, "unix:///nonexistent/docker.sock")
    assert rt.name == "docker"
    rt.close()
    for kind in ("k8s", "fake"):  # the in-memory test double (tests/runtimes/fake.py) is no backend
        with pytest.raises(ValidationFailed, match=f"unknown runtime '{kind}'"):
            make_runtime(kind, tmp_path)


PASSWD = b"root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0:another root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n"


def _image_with_user(client: docker.DockerClient, user: str, tag: str) -> str:
    """The test image with our /etc/passwd and ``USER user`` (docker commit: no build, no registry)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("passwd")
        info.size = len(PASSWD)
        tar.addfile(info, io.BytesIO(PASSWD))
    c = client.containers.create(TEST_IMAGE, command=["true"])
    try:
        c.put_archive("/etc", buf.getvalue())
        c.commit(repository="arkserve-test/users", tag=tag, changes=[f"USER {user}"])
    finally:
        c.remove(force=True)
    return f"arkserve-test/users:{tag}"


@pytest.mark.docker
@pytest.mark.parametrize(("user", "runs_as"), [("toor", "65534"), ("00", "65534"), ("+0", "65534"),
                                               ("root:app", "65534"), ("app", "1000"), ("1000:1000", "1000"),
                                               ("ghost", "65534")])
def test_a_replica_never_runs_as_root_whatever_the_image_calls_it(rt: DockerRuntime, user: str, runs_as: str) -> None:
    client = docker.from_env()
    image = _image_with_user(client, user, f"u{abs(hash(user)) % 10**8}")
    try:
        info = rt.start(spec(image=image, command="id -u > /tmp/uid; sleep 300"))
        container = client.containers.get(info.runtime_id)
        wait_until(lambda: container.exec_run(["cat", "/tmp/uid"]).exit_code == 0, timeout=10, what="the uid file")
        assert container.exec_run(["cat", "/tmp/uid"]).output.decode().strip() == runs_as
        rt.stop("dsvc", "r0000d1", grace_s=0)
    finally:
        client.images.remove(image, force=True)
        client.close()


def _reaches(client: docker.DockerClient, src: str, dst: str, network: str) -> bool:
    """Whether container ``src`` gets an answer from ``dst``'s app (port 8000) over ``network``, past any gateway."""
    ip = client.containers.get(dst).attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    probe = f"printf 'GET /env HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 8000"
    return b"ARK_SERVICE=" in client.containers.get(src).exec_run(["sh", "-c", probe]).output


@pytest.mark.docker
@pytest.mark.parametrize("network", ["own", "bridge"])
def test_replicas_of_other_services_cannot_call_each_other(docker_daemon: None, tmp_path: Path, network: str) -> None:
    """Containers join a network of the platform's own with traffic between them off (docs/security.md); on Docker's
    default bridge (the setting ``bridge``, and what every container joined before) one tenant's replica reaches
    another's app directly, unsigned."""
    assert DockerRuntime(tmp_path).network == "arkserve"  # the default
    name = f"ark-test-{DOCKER_INSTANCE}-{tmp_path.name}"[:60] if network == "own" else network
    client = docker.from_env()
    rt = DockerRuntime(tmp_path, instance=DOCKER_INSTANCE, network=name)
    try:
        a = rt.start(spec(service="dsvc", command=BB_SERVE))
        b = rt.start(spec(service="dsvc2", replica="r0000d2", command=BB_SERVE))
        wait_http(a)  # the gateway's way in, the port published on 127.0.0.1, still works
        wait_http(b)
        assert list(client.containers.get(a.runtime_id).attrs["NetworkSettings"]["Networks"]) == [name]
        if network == "own":
            assert client.networks.get(name).attrs["Options"] == {"com.docker.network.bridge.enable_icc": "false"}
        assert _reaches(client, b.runtime_id, a.runtime_id, name) is (network == "bridge")
        assert _reaches(client, a.runtime_id, b.runtime_id, name) is (network == "bridge")
        # nor by the host's side of the bridge, at the port published for the gateway (127.0.0.1 only)
        gateway = client.containers.get(b.runtime_id).attrs["NetworkSettings"]["Networks"][name]["Gateway"]
        probe = f"printf 'GET /env HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gateway} {a.port}"
        assert b"ARK_SERVICE=" not in client.containers.get(b.runtime_id).exec_run(["sh", "-c", probe]).output
    finally:
        for service, replica in (("dsvc", "r0000d1"), ("dsvc2", "r0000d2")):
            rt.stop(service, replica, grace_s=0)
        rt.close()
        if network == "own":
            with contextlib.suppress(docker.errors.NotFound):
                client.networks.get(name).remove()
        client.close()


@pytest.mark.docker
def test_a_container_left_by_a_stop_is_never_followed_into_a_reused_log_folder(
        rt: DockerRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop whose removal Docker answered 409 (already in progress) leaves the container listed a while; the
    service's deletion then removes its log folder and may give its name to a new service. Listing it again
    must not start a follower that copies its whole output into ``logs/<service>/`` (the new one's)."""
    from docker.models.containers import Container

    from arkserve.logs import log_dir_for, remove_service_logs

    info = rt.start(spec(command="echo OLD-SECRET; sleep 300"))
    log_file = log_dir_for(tmp_path) / "dsvc" / "r0000d1.log"
    wait_until(lambda: log_file.exists() and "OLD-SECRET" in log_file.read_text(), what="the line in the log")

    def busy(self: Container, **kw: object) -> None:  # Docker: "removal of container ... is already in progress"
        raise docker.errors.APIError("conflict", response=type("R", (), {"status_code": 409})())

    monkeypatch.setattr(Container, "remove", busy)
    rt.stop("dsvc", "r0000d1", grace_s=0)
    monkeypatch.undo()
    remove_service_logs(log_dir_for(tmp_path), "dsvc")  # the deletion, while the container is still there
    listed = [i for i in rt.list() if i.replica == "r0000d1"]
    assert listed and listed[0].runtime_id == info.runtime_id  # still listed: the situation under test
    rt.inspect("dsvc", "r0000d1")
    time.sleep(0.5)  # an absence: a follower, were one started, would have written the line by now
    assert not log_file.exists(), log_file.read_text()
