"""The kubernetes runtime's spec mapping: what a ReplicaSpec becomes (Pod, pull Secret), validated offline
against the current Kubernetes release's OpenAPI schemas (``kubernetes-validate``) and read back by the client."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from arkserve.errors import PermanentError, ValidationFailed
from arkserve.runtimes.base import Mount, ReplicaSpec
from arkserve.runtimes.kube_mapping import KubeTarget, pod_manifest, pull_secret, selector

from .kube_fixtures import K8S_VERSION, as_client_returns, validate

TARGET = KubeTarget(namespace="arkserve", claim="arkserve-data", shared_root="/var/lib/arkserve", grace_s=10.0)
TRUSTED = dataclasses.replace(TARGET, rw_mounts=True)  # runtime.kube_rw_mounts on
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJhY2Nlc3MiOltdfQ.c2ln"


def _spec(**kw: Any) -> ReplicaSpec:
    base: dict[str, Any] = {"service": "flowers", "replica": "r0000a1", "revision": "3f2a9c1",
                            "image": "127.0.0.1:5000/alice/flowers:1", "command": "python serve.py --port $PORT",
                            "port": 8000}
    return ReplicaSpec(**{**base, **kw})


FULL = _spec(env={"GREETING": "hello world", "MODEL": "resnet34"}, cpus=2.5, memory_mb=4096, gpus=2,
             mounts=(Mount("/var/lib/arkserve/model-cache/sha256-ab12", "/model", True),
                     Mount("/var/lib/arkserve/disk/alice/data", "/data", False)),
             pull_token=TOKEN)


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    [c] = pod["spec"]["containers"]
    return dict(c)


def test_a_full_spec_becomes_a_valid_pod() -> None:
    pod = pod_manifest(FULL, TRUSTED)
    validate(pod)
    assert tuple(map(int, K8S_VERSION.split(".")[:2])) >= (1, 31)
    meta, c = pod["metadata"], _container(pod)
    assert (meta["name"], meta["namespace"]) == ("ark-flowers-r0000a1", "arkserve")
    assert meta["labels"] == {"arkserve.io/managed": "true", "arkserve.io/service": "flowers",
                              "arkserve.io/replica": "r0000a1", "arkserve.io/revision": "3f2a9c1"}
    assert c["image"] == FULL.image and c["imagePullPolicy"] == "Always"
    assert c["command"] == ["/bin/sh", "-c", "python serve.py --port $PORT"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["GREETING"] == "hello world" and env["PORT"] == "8000" and env["ARK_SERVICE"] == "flowers"
    assert env["ARK_REPLICA"] == "r0000a1" and env["ARK_MODEL_DIR"] == "/model" and env["HOME"] == "/tmp"
    want = {"cpu": "2500m", "memory": "4096Mi", "nvidia.com/gpu": "2"}
    assert c["resources"] == {"requests": want, "limits": want}  # requests = limits: Guaranteed QoS
    assert c["volumeMounts"] == [
        {"name": "ark-shared", "mountPath": "/model", "readOnly": True, "subPath": "model-cache/sha256-ab12"},
        {"name": "ark-shared", "mountPath": "/data", "readOnly": False, "subPath": "disk/alice/data"}]
    assert pod["spec"]["volumes"] == [{"name": "ark-shared", "persistentVolumeClaim": {"claimName": "arkserve-data"}}]
    assert pod["spec"]["terminationGracePeriodSeconds"] == 10 and pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "ark-pull-flowers"}]
    assert pod["spec"]["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["runAsUser"] == 65534 and sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc["privileged"]


def test_the_client_reads_the_pod_back_unchanged() -> None:
    """The manifest is what the client's own ``V1Pod`` model serializes: no field the client does not know."""
    pod = pod_manifest(FULL, TRUSTED)
    assert as_client_returns("V1Pod", pod) == pod


def test_the_pull_secret_is_a_valid_dockerconfigjson_for_the_registry() -> None:
    secret = pull_secret(FULL, TARGET)
    assert secret is not None
    validate(secret)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("ark-pull-flowers", "arkserve")
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["127.0.0.1:5000"]
    assert entry["password"] == TOKEN and entry["registrytoken"] == TOKEN
    assert base64.b64decode(entry["auth"]).decode() == f"{entry['username']}:{TOKEN}"
    assert as_client_returns("V1Secret", secret) == secret


@pytest.mark.parametrize(("image", "token", "policy", "secret"), [
    ("127.0.0.1:5000/alice/app:1", TOKEN, "Always", True),  # the platform registry, re-pulled every start
    ("nvcr.io/nvidia/tritonserver:24.05-py3", "", "IfNotPresent", False),  # a registry the reference names
    ("arkserve-test/busybox:1", "", "Never", False),  # no registry host: never from a public one (as docker)
])
def test_pull_policy_follows_the_image_reference(image: str, token: str, policy: str, secret: bool) -> None:
    spec = _spec(image=image, pull_token=token)
    pod = pod_manifest(spec, TARGET)
    validate(pod)
    assert _container(pod)["imagePullPolicy"] == policy
    assert ("imagePullSecrets" in pod["spec"]) is secret and (pull_secret(spec, TARGET) is not None) is secret


def test_a_minimal_spec_has_no_limits_no_volumes_and_the_image_entrypoint() -> None:
    pod = pod_manifest(_spec(command="  ", image="arkserve-test/busybox:1"), KubeTarget(namespace="team-a"))
    validate(pod)
    c = _container(pod)
    assert "command" not in c and "resources" not in c and "volumeMounts" not in c
    assert "volumes" not in pod["spec"] and pod["metadata"]["namespace"] == "team-a"


def test_a_fractional_gpu_type_asks_for_one_gpu() -> None:
    pod = pod_manifest(_spec(gpus=0, gpu_indices=(1,), gpu_memory_mb=8192), TARGET)
    validate(pod)
    assert _container(pod)["resources"]["limits"] == {"nvidia.com/gpu": "1"}


def test_an_instance_label_keeps_installs_apart() -> None:
    target = KubeTarget(namespace="arkserve", instance="pytest-42")
    pod = pod_manifest(_spec(), target)
    validate(pod)
    assert pod["metadata"]["labels"]["arkserve.io/instance"] == "pytest-42"
    assert selector("pytest-42") == "arkserve.io/managed=true,arkserve.io/instance=pytest-42"
    assert selector("", **{"arkserve.io/service": "flowers"}) == "arkserve.io/managed=true,arkserve.io/service=flowers"


@pytest.mark.parametrize(("target", "source", "words"), [
    (TARGET, "/home/alice/model", "not on the shared volume"),
    (TARGET, "/var/lib/arkserve/../../etc", "not on the shared volume"),
    (TARGET, "model-cache/x", "not on the shared volume"),
    (KubeTarget(namespace="arkserve"), "/var/lib/arkserve/disk/alice", "no shared volume claim"),
])
def test_a_mount_off_the_shared_volume_is_permanent(target: KubeTarget, source: str, words: str) -> None:
    with pytest.raises(PermanentError, match=words) as err:
        pod_manifest(_spec(mounts=(Mount(source, "/model"),)), target)
    assert err.value.code == "MountUnavailable"


def test_a_read_write_mount_is_refused_unless_the_operator_allows_it() -> None:
    # the kubelet resolves a subPath's links before its safe open, so a writable folder on the shared claim
    # could redirect another replica's mount to any folder of the claim: rw is off by default
    rw = _spec(mounts=(Mount("/var/lib/arkserve/disk/alice/data", "/data", False),))
    with pytest.raises(PermanentError, match="read-write mounts are off") as err:
        pod_manifest(rw, TARGET)
    assert err.value.code == "MountUnavailable"
    ro = _spec(mounts=(Mount("/var/lib/arkserve/disk/alice/data", "/data", True),))
    assert _container(pod_manifest(ro, TARGET))["volumeMounts"][0]["readOnly"] is True
    assert _container(pod_manifest(rw, TRUSTED))["volumeMounts"][0]["readOnly"] is False


def test_names_that_do_not_parse_back_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="invalid replica name"):
        pod_manifest(_spec(service="Flowers_1"), TARGET)
