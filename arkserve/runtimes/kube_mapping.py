"""What a :class:`ReplicaSpec` becomes on Kubernetes: the Pod manifest and its pull Secret (pure, no client).

One replica is one Pod named ``ark-<service>-<replica>`` in the runtime's namespace, labelled
``arkserve.io/managed=true``, ``arkserve.io/service``, ``arkserve.io/replica``, ``arkserve.io/revision``
(and ``arkserve.io/instance`` when the runtime has one), so a restarted reconciler lists them by label and
adopts them. The container ``app`` runs the command under ``/bin/sh -c`` with the declared port, the same
environment as the docker runtime (``PORT``, ``ARK_*``, ``HOME=/tmp``, the user env), CPU and memory
requests equal to limits, GPUs as ``nvidia.com/gpu``; it never runs as root (uid/gid 65534), escalates
nothing and keeps only the capabilities docker keeps. The service's mounts (network disk, model cache)
are sub-paths of one ReadWriteMany PersistentVolumeClaim that holds the platform's data dir
(``shared_root``): a mount's source must lie under it. ``restartPolicy: Never``: a crash is an exited
replica the reconciler restarts (with backoff), as on the other runtimes. Images from the platform
registry are pulled with a ``kubernetes.io/dockerconfigjson`` Secret made from the spec's pull token; an
image without a registry host is never pulled (``imagePullPolicy: Never``), as on docker.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from arkserve.errors import PermanentError
from arkserve.registry.tokens import PULL_USER
from arkserve.runtimes.base import ReplicaSpec, checked_object_name

LABEL_MANAGED = "arkserve.io/managed"
LABEL_SERVICE = "arkserve.io/service"
LABEL_REPLICA = "arkserve.io/replica"
LABEL_REVISION = "arkserve.io/revision"
LABEL_INSTANCE = "arkserve.io/instance"
ANNOTATION_PORT = "arkserve.io/port"
CONTAINER = "app"
SHARED_VOLUME = "ark-shared"
NOBODY = 65534
KEPT_CAPABILITIES = ("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE", "KILL", "FOWNER", "DAC_OVERRIDE")


@dataclass(frozen=True)
class KubeTarget:
    """Where and how replicas land: from the runtime's settings."""

    namespace: str = "default"
    claim: str = ""  # the ReadWriteMany PVC holding shared_root ('' = mounts are refused)
    shared_root: str = ""  # the path of the claim's root as the platform sees it (its data dir)
    instance: str = ""
    grace_s: float = 30.0  # terminationGracePeriodSeconds (stop() passes its own grace on delete)
    rw_mounts: bool = False  # read-write disk mounts allowed (runtime.kube_rw_mounts; trusted users only)


def selector(instance: str = "", **labels: str) -> str:
    """A label selector for this runtime's Pods (``arkserve.io/managed=true[,arkserve.io/instance=x]``)."""
    parts = [f"{LABEL_MANAGED}=true"] + ([f"{LABEL_INSTANCE}={instance}"] if instance else [])
    return ",".join(parts + [f"{k}={v}" for k, v in labels.items()])


def pull_secret_name(service: str) -> str:
    return f"ark-pull-{service}"


def registry_host(image: str) -> str:
    """``127.0.0.1:5000/alice/app:1`` -> ``127.0.0.1:5000``; '' when the reference names no registry."""
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else ""


def pull_policy(spec: ReplicaSpec) -> str:
    """``Always`` for the platform registry (a re-pushed tag is picked up, as on docker), ``IfNotPresent`` for
    another registry named in the reference, ``Never`` for a bare name: as on docker, nothing is pulled from
    a public registry the reference does not name (load it onto the nodes, or push it to the platform's)."""
    if spec.pull_token:
        return "Always"
    return "IfNotPresent" if registry_host(spec.image) else "Never"


def pull_secret(spec: ReplicaSpec, target: KubeTarget) -> dict[str, Any] | None:
    """The dockerconfigjson Secret for the spec's pull token; None when the image needs none."""
    host = registry_host(spec.image)
    if not spec.pull_token or not host:
        return None
    auth = base64.b64encode(f"{PULL_USER}:{spec.pull_token}".encode()).decode()
    config = {"auths": {host: {"username": PULL_USER, "password": spec.pull_token, "auth": auth,
                               "registrytoken": spec.pull_token}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": pull_secret_name(spec.service), "namespace": target.namespace,
                         "labels": _labels(target, {LABEL_SERVICE: spec.service})},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def _labels(target: KubeTarget, extra: dict[str, str]) -> dict[str, str]:
    labels = {LABEL_MANAGED: "true", **extra}
    if target.instance:
        labels[LABEL_INSTANCE] = target.instance
    return labels


def millicores(cpus: float) -> str:
    return f"{max(1, round(cpus * 1000))}m"


def _resources(spec: ReplicaSpec) -> dict[str, Any]:
    amounts: dict[str, str] = {}
    if spec.cpus > 0:
        amounts["cpu"] = millicores(spec.cpus)
    if spec.memory_mb > 0:
        amounts["memory"] = f"{spec.memory_mb}Mi"
    # a fractional GPU type (a share of one GPU's memory) asks the device plugin for one GPU: sharing it is
    # the plugin's business (time-slicing, MIG), not the Pod's
    gpus = max(spec.gpus, 1 if (spec.gpu_indices or spec.gpu_memory_mb) else 0)
    if gpus:
        amounts["nvidia.com/gpu"] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _volume_mounts(spec: ReplicaSpec, target: KubeTarget) -> list[dict[str, Any]]:
    mounts = []
    for m in spec.mounts:
        source, root = PurePosixPath(m.source), PurePosixPath(target.shared_root or "/nonexistent-root")
        if not target.claim:
            raise PermanentError(f"mount {m.target}: the Kubernetes runtime has no shared volume claim "
                                 "(runtime.kube_volume_claim) to mount it from", code="MountUnavailable")
        if not source.is_absolute() or ".." in source.parts or not source.is_relative_to(root):
            raise PermanentError(f"mount {m.target}: {m.source} is not on the shared volume ({root}, claim "
                                 f"{target.claim})", code="MountUnavailable")
        if not m.read_only and not target.rw_mounts:
            raise PermanentError(f"mount {m.target}: read-write mounts are off on the Kubernetes runtime (the "
                                 "kubelet follows links in a sub-path, so a replica that writes a folder could "
                                 "redirect another's mount); mount it read-only, or an operator sets "
                                 "runtime.kube_rw_mounts where all users are trusted", code="MountUnavailable")
        sub = source.relative_to(root).as_posix()
        mount: dict[str, Any] = {"name": SHARED_VOLUME, "mountPath": m.target, "readOnly": m.read_only}
        if sub != ".":
            mount["subPath"] = sub
        mounts.append(mount)
    return mounts


def pod_manifest(spec: ReplicaSpec, target: KubeTarget) -> dict[str, Any]:
    """The Pod for one replica, as the API server takes it (camelCase JSON)."""
    name = checked_object_name(spec.service, spec.replica)
    env = {"HOME": "/tmp", **spec.env, "PORT": str(spec.port), "ARK_PORT": str(spec.port),  # noqa: S108
           "ARK_SERVICE": spec.service, "ARK_REPLICA": spec.replica, "ARK_REVISION": spec.revision}
    if spec.mounts:
        env["ARK_MODEL_DIR"] = spec.mounts[0].target
    container: dict[str, Any] = {
        "name": CONTAINER, "image": spec.image,
        "imagePullPolicy": pull_policy(spec),
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False, "privileged": False,
                            "capabilities": {"drop": ["ALL"], "add": list(KEPT_CAPABILITIES)}},
    }
    if spec.command.strip():
        container["command"] = ["/bin/sh", "-c", spec.command]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    volume_mounts = _volume_mounts(spec, target)
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    pod_spec: dict[str, Any] = {
        "containers": [container], "restartPolicy": "Never",
        "terminationGracePeriodSeconds": max(0, round(target.grace_s)),
        "automountServiceAccountToken": False,  # a replica has no business with the cluster's API
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if volume_mounts:
        pod_spec["volumes"] = [{"name": SHARED_VOLUME, "persistentVolumeClaim": {"claimName": target.claim}}]
    if pull_secret(spec, target) is not None:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret_name(spec.service)}]
    labels = _labels(target, {LABEL_SERVICE: spec.service, LABEL_REPLICA: spec.replica,
                              LABEL_REVISION: spec.revision})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": target.namespace, "labels": labels,
                         "annotations": {ANNOTATION_PORT: str(spec.port)}},
            "spec": pod_spec}
