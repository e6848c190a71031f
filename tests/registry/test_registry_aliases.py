"""The platform registry by another of its names (``localhost:PORT``, ``[::1]:PORT``, ``LOCALHOST:PORT``...) is
still the platform registry: a service naming another user's private image that way is refused like the
canonical name, and one naming the owner's own image that way runs, pulled with its token, under the name the
owner wrote. Whatever reference a replica names, the Docker runtime never pulls with the docker credentials of
the platform's own user (its ``DOCKER_CONFIG``): a pull without the platform's token is anonymous.

The names themselves, ``service_image`` and the reconciler's ``token_for`` (which also decides the Kubernetes
pull Secret) are checked offline; the services and the runtime with the real registry and a real dockerd."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from arkserve import settings as settings_mod
from arkserve.api.images import service_image
from arkserve.errors import PermanentError, ValidationFailed
from arkserve.reconciler.loop import Reconciler
from arkserve.registry.names import in_registry
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.base import ReplicaSpec
from arkserve.runtimes.docker import DockerRuntime
from arkserve.runtimes.kube_mapping import KubeTarget, pod_manifest, pull_policy, pull_secret
from arkserve.sdk.client import ApiError
from arkserve.store.db import open_store
from tests.registry.conftest import Stack, wait_for
from tests.runtimes.conftest import DOCKER_INSTANCE

ADDRESS = "127.0.0.1:7782"
SERVE = "mkdir -p /tmp/www; echo ok > /tmp/www/healthz; exec httpd -f -p $PORT -h /tmp/www"


def aliases(port: int | str) -> list[str]:
    """Other names of a registry published as ``127.0.0.1:<port>``: Docker reaches it by each of them."""
    return [f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}", f"[0:0:0:0:0:0:0:1]:{port}", f"0.0.0.0:{port}",
            f"127.1:{port}", f"127.0.0.2:{port}", f"{socket.gethostname()}:{port}"]


@pytest.mark.parametrize("host", [ADDRESS, *aliases(7782)])
def test_every_name_of_the_registry_is_the_registry(host: str) -> None:
    ref = in_registry(f"{host}/bob/priv:v1", ADDRESS)
    assert ref is not None and (ref.repository, ref.tag) == ("bob/priv", "v1")


@pytest.mark.parametrize(("image", "address", "listen"), [
    ("REGISTRY.example.com/bob/priv:v1", "registry.example.com", ""),  # its host name, in any case
    ("registry.example.com:443/bob/priv:v1", "registry.example.com", ""),  # no port: https's
    ("127.0.0.1:7782/bob/priv:v1", "registry.example.com", "127.0.0.1:7782"),  # where it listens
    ("localhost:7782/bob/priv:v1", "registry.example.com", "0.0.0.0:7782"),
    ("[::1]:7782/bob/priv:v1", "registry.example.com", "[::]:7782"),
    ("LOCALHOST/bob/priv:v1", "registry.example.com", ""),  # Docker reads an upper-case first part as a host
])
def test_the_registry_by_its_host_name_and_listen_address(image: str, address: str, listen: str) -> None:
    ref = in_registry(image, address, listen)
    assert ref is not None and ref.repository == "bob/priv"


@pytest.mark.parametrize("image", [
    "localhost:7783/bob/priv:v1", "127.0.0.1:5000/bob/priv:v1", "[::1]:80/bob/priv:v1",  # another port
    "registry.example.com:7782/bob/priv:v1", "10.1.2.3:7782/bob/priv:v1",  # another host
    "bob/priv:v1", "docker.io/bob/priv:v1", "arkserve-test/busybox:1", "priv:v1",
])
def test_other_registries_are_not_the_registry(image: str) -> None:
    assert in_registry(image, ADDRESS) is None


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[SimpleNamespace]:
    s = settings_mod.load({"data_dir": str(tmp_path), "runtime.kind": "docker", "registry.port": 7782}, env={})
    store = open_store(f"sqlite:///{tmp_path / 'arkserve.db'}")
    try:
        yield SimpleNamespace(settings=s, store=store)
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("host", [ADDRESS, *aliases(7782)])
def test_a_service_naming_a_private_image_by_an_alias_is_refused(offline: SimpleNamespace, host: str) -> None:
    alice = SimpleNamespace(username="alice", is_admin=False)
    with pytest.raises(ValidationFailed, match="alice may not pull bob/priv: bob/priv is private"):
        service_image(offline, alice, f"{host}/bob/priv:v1")  # type: ignore[arg-type]
    own = f"{host}/alice/app:v1"
    assert service_image(offline, alice, own) == own  # type: ignore[arg-type]  # kept as she wrote it


@pytest.mark.parametrize("host", [ADDRESS, "localhost:7782", "LOCALHOST:7782", "[::1]:7782"])
def test_the_reconciler_refuses_or_tokens_an_alias_and_kubernetes_gets_its_pull_secret(
        offline: SimpleNamespace, host: str) -> None:
    """A service stored with an alias (before this check existed) fails with ImagePullDenied at its next start;
    the owner's own image by an alias gets its token, which the Kubernetes runtime puts in the pull Secret for
    the host the image names (the one the kubelet looks up)."""
    pulls = RegistryPulls(ADDRESS, offline.settings.data_dir)
    with offline.store.read() as conn:
        with pytest.raises(PermanentError, match="bob/priv is private") as refused:
            pulls.token_for(conn, f"{host}/bob/priv:v1", "alice", False)
        assert refused.value.code == "ImagePullDenied"
        token = pulls.token_for(conn, f"{host}/alice/app:v1", "alice", False)
    assert token
    spec = ReplicaSpec(service="app", replica="r0000a1", revision="3f2a9c1", image=f"{host}/alice/app:v1", command="",
                       port=8000, pull_token=token)
    target = KubeTarget(namespace="arkserve")
    secret = pull_secret(spec, target)
    assert secret is not None and pull_policy(spec) == "Always"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert list(config["auths"]) == [host] and config["auths"][host]["password"] == token
    assert pod_manifest(spec, target)["spec"]["imagePullSecrets"] == [{"name": "ark-pull-app"}]


# ---- real registry, real dockerd ----


def _push_private(stack: Stack) -> str:
    """bob's private ``bob/priv:v1`` (his own layer, so nothing else on the host has it); its local copy removed."""
    if "bob" not in stack.accounts:
        stack.add_user("bob")
        assert stack.login("bob").returncode == 0
        pushed = stack.push("bob", "bob/priv:v1")
        assert pushed.returncode == 0, pushed.stderr
    subprocess.run(["docker", "rmi", f"{stack.address}/bob/priv:v1"], capture_output=True)
    return "bob/priv:v1"


def _gone(ref: str) -> bool:
    subprocess.run(["docker", "rmi", ref], capture_output=True)
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode != 0


@pytest.mark.docker
def test_alice_cannot_run_bobs_private_image_by_any_name(stack: Stack) -> None:
    repo = _push_private(stack)
    stack.add_user("alice")
    port = stack.settings.registry.port
    base = {"port": 8000, "command": SERVE, "health_path": "/healthz", "replicas": 0}
    with stack.client("alice") as c:
        for host in [stack.address, f"localhost:{port}", f"LOCALHOST:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"]:
            with pytest.raises(ApiError) as refused:
                c.post("/services", {"name": f"steal-{uuid.uuid4().hex[:6]}", "image": f"{host}/{repo}", **base})
            assert refused.value.status == 422 and refused.value.code == "ValidationFailed", host
            assert "alice may not pull bob/priv: bob/priv is private" in refused.value.message, host


@pytest.fixture
def operator_login(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The platform's own user has once run ``docker login localhost:PORT -u admin`` (to publish base images):
    its docker config holds the admin's credentials for that name of the registry. DOCKER_CONFIG points the
    Docker runtimes built in the test at it."""
    config = tmp_path / "operator-docker"
    config.mkdir()
    host = f"localhost:{stack.settings.registry.port}"
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    done = subprocess.run(["docker", "login", host, "-u", "admin", "--password-stdin"], env=env, text=True,
                          input=stack.accounts["admin"].password + "\n", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stored = json.loads((config / "config.json").read_text())
    assert stored["auths"][host]["auth"] and "credsStore" not in stored  # in the file, where docker-py reads it
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.mark.docker
def test_a_pull_without_the_platforms_token_never_uses_the_platform_users_credentials(
        stack: Stack, operator_login: Path) -> None:
    """A reference the platform did not take for its registry (here: the runtime handed one directly, as for a
    name of the host it does not know) is pulled anonymously, so the registry refuses bob's private image."""
    repo = _push_private(stack)
    image = f"localhost:{stack.settings.registry.port}/{repo}"
    assert _gone(image)
    runtime = DockerRuntime(stack.settings.data_dir, instance=DOCKER_INSTANCE)
    spec = ReplicaSpec(service="steal", replica="r0000a1", revision="3f2a9c1", image=image, command=SERVE, port=8000)
    try:
        with pytest.raises(PermanentError) as refused:
            runtime.start(spec)
        assert refused.value.code == "ImagePullDenied", refused.value
        assert "unauthorized" in refused.value.message or "denied" in refused.value.message, refused.value
        assert subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0
        assert not [r for r in runtime.list() if r.service == "steal"]
    finally:
        with suppress(Exception):  # only when the test failed: the replica it started with the admin's login
            runtime.stop("steal", "r0000a1", grace_s=0)
        runtime.close()
        _gone(image)


@pytest.fixture
def reconciler(stack: Stack, operator_login: Path) -> Iterator[Reconciler]:
    with stack.reconciler() as rec:
        yield rec


@pytest.mark.docker
def test_the_owners_image_by_an_alias_runs_under_that_name_pulled_with_its_token(
        stack: Stack, reconciler: Reconciler) -> None:
    """bob's own private image as ``localhost:PORT/bob/priv:v1`` (the platform user's admin login for that name
    notwithstanding): the reconciler pulls it with bob's token and the service keeps the name bob wrote."""
    repo = _push_private(stack)
    image = f"localhost:{stack.settings.registry.port}/{repo}"
    assert _gone(image)
    try:
        with stack.client("bob") as c:
            created = c.post("/services", {"name": "bobalias", "image": image, "port": 8000, "command": SERVE,
                                           "health_path": "/healthz", "startup_timeout_s": 30})
            assert created["spec"]["image"] == image

            def ready() -> dict[str, Any] | None:
                svc: dict[str, Any] = c.get("/services/bobalias")
                assert svc["status"] != "failed", svc
                return svc if svc["ready"] == 1 else None

            svc = wait_for("bobalias ready", ready, timeout=90)
            assert svc["spec"]["image"] == image and svc["instances"][0]["image_digest"].startswith("sha256:")
            c.delete("/services/bobalias")
    finally:
        _gone(image)
