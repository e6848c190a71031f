"""Build a runtime backend from settings: ``make_runtime("local"|"docker"|"kubernetes", data_dir, docker_url)``.

Backend modules are imported on demand, so the docker SDK (or the kubernetes client) loads only when it is used.
"""

from __future__ import annotations

from pathlib import Path

from arkserve.errors import ValidationFailed
from arkserve.runtimes.base import Runtime
from arkserve.settings import RuntimeSettings as KubeSettings

RUNTIME_KINDS = ("local", "docker", "kubernetes")


def make_runtime(kind: str, data_dir: Path, docker_url: str = "", *, docker_instance: str = "",
                 docker_network: str = "arkserve", replica_user: str = "nobody", sandbox_paths: str = "",
                 kube: KubeSettings | None = None, stop_grace_s: float = 10.0) -> Runtime:
    """A runtime of ``kind`` keeping its state and logs under ``data_dir``.

    Raises ``ValidationFailed`` for an unknown kind and ``RuntimeUnavailable`` when the
    docker client cannot be set up. ``kube`` (the ``runtime`` settings group) configures the kubernetes
    runtime; its Pods get ``stop_grace_s`` as their termination grace period."""
    data_dir = Path(data_dir).expanduser()
    if kind == "local":
        from arkserve.runtimes.local import LocalRuntime

        try:
            return LocalRuntime(data_dir, replica_user=replica_user,
                                sandbox_paths=tuple(p for p in sandbox_paths.split(":") if p))
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="runtime.replica_user") from None
    if kind == "docker":
        from arkserve.runtimes.docker import DockerRuntime

        return DockerRuntime(data_dir, docker_url, instance=docker_instance, network=docker_network)
    if kind == "kubernetes":
        from arkserve.runtimes.kube_mapping import KubeTarget
        from arkserve.runtimes.kubernetes import KubernetesRuntime

        k = kube or KubeSettings()
        target = KubeTarget(namespace=k.kube_namespace, claim=k.kube_volume_claim,
                            shared_root=k.kube_shared_root or str(data_dir), grace_s=stop_grace_s,
                            rw_mounts=k.kube_rw_mounts)
        return KubernetesRuntime(data_dir, target, kubeconfig=k.kubeconfig, start_timeout_s=k.kube_start_timeout_s)
    raise ValidationFailed(f"unknown runtime {kind!r}: expected one of {', '.join(RUNTIME_KINDS)}",
                           field="runtime.kind")
