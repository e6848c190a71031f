"""Build a runtime backend from settings: ``make_runtime("local"|"docker", data_dir, docker_url)``.

Backend modules are imported on demand, so the docker SDK loads only when it is used.
"""

from __future__ import annotations

from pathlib import Path

from arkserve.errors import ValidationFailed
from arkserve.runtimes.base import Runtime

RUNTIME_KINDS = ("local", "docker")


def make_runtime(kind: str, data_dir: Path, docker_url: str = "", *, docker_instance: str = "",
                 replica_user: str = "nobody", sandbox_paths: str = "") -> Runtime:
    """A runtime of ``kind`` keeping its state and logs under ``data_dir``.

    Raises ``ValidationFailed`` for an unknown kind and ``RuntimeUnavailable`` when the
    docker client cannot be set up."""
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

        return DockerRuntime(data_dir, docker_url, instance=docker_instance)
    raise ValidationFailed(f"unknown runtime {kind!r}: expected one of {', '.join(RUNTIME_KINDS)}",
                           field="runtime.kind")
