"""The runtime contract: what the reconciler may ask of a backend.

A runtime starts a replica from a :class:`ReplicaSpec`, stops it with a grace
period (SIGTERM, then SIGKILL), lists what exists and inspects one replica. Every
object it creates carries a parseable name ``ark-<service>-<replica>`` and labels
(``ark.service``, ``ark.replica``, ``ark.revision``) so that a restarted
reconciler adopts live replicas instead of starting duplicates.

Replica stdout/stderr is appended to ``<log_dir>/<service>/<replica>.log`` by the
runtime (see ``arkserve.logs``), so logs outlive the replica.

The interface is synchronous and thread-safe; the reconciler calls it from worker
threads, one service at a time per thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from arkserve.errors import ValidationFailed

NAME_PREFIX = "ark"
_NAME_RE = re.compile(r"^ark-(?P<service>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)-(?P<replica>r[0-9a-f]{6,12})$")


def object_name(service: str, replica: str) -> str:
    return f"{NAME_PREFIX}-{service}-{replica}"


def checked_object_name(service: str, replica: str) -> str:
    """``object_name`` for names that parse back; ``ValidationFailed`` otherwise (runtimes call it in start)."""
    name = object_name(service, replica)
    if parse_object_name(name) != (service, replica):
        raise ValidationFailed(f"invalid replica name {name!r}: service must be a DNS label, replica r+6-12 hex",
                               field="replica")
    return name


def parse_object_name(name: str) -> tuple[str, str] | None:
    """``ark-flowers-r1a2b3c`` -> ``("flowers", "r1a2b3c")``; None for anything else."""
    m = _NAME_RE.match(name.lstrip("/"))
    return (m["service"], m["replica"]) if m else None


@dataclass(frozen=True)
class Mount:
    source: str  # host path (local dir, model cache, network-disk dir)
    target: str  # path inside the replica
    read_only: bool = True
    # a folder of the network disk: the resolved ``<data_dir>/disks`` that ``source`` was checked under. Users
    # can change what is there (a replica with a writable mount of a parent folder can swap the folder for a
    # link), so runtimes never hand ``source`` to a mount by path: they open it from this root by descriptors
    # (:func:`arkserve.storage.paths.open_disk_folder`) and mount what they opened. "" for platform-owned
    # sources (the model cache, a test's directory), mounted by path.
    disk_root: str = ""


@dataclass(frozen=True)
class ReplicaSpec:
    service: str
    replica: str  # "r" + hex, unique per service
    revision: str  # short hash of the spec fields that force a rolling update
    image: str  # docker: image reference; local: a directory ("dir:/path" or a plain path)
    command: str  # shell command line
    port: int  # the port the app listens on (inside the container on docker)
    env: Mapping[str, str] = field(default_factory=dict)
    cpus: float = 0.0  # 0 = no limit
    memory_mb: int = 0  # 0 = no limit
    gpus: int = 0
    gpu_indices: tuple[int, ...] = ()  # the GPUs placement assigned (whole, or the one it has a share of)
    gpu_memory_mb: int = 0  # a fractional type's share of that GPU's memory (0: whole GPUs or none)
    mounts: tuple[Mount, ...] = ()
    trusted: bool = False  # owned by an admin: may run unconfined where the local runtime cannot sandbox
    pull_token: str = ""  # docker: a registry token for pulling exactly this image (the platform registry)
    on_progress: Callable[[str], None] | None = field(default=None, compare=False)  # pull progress, in words


class ReplicaPhase(StrEnum):
    """What the runtime itself observes (readiness is the reconciler's business)."""

    CREATED = "created"  # exists, not yet running
    RUNNING = "running"
    EXITED = "exited"  # process/container ended; see exit_code


@dataclass(frozen=True)
class ReplicaInfo:
    service: str
    replica: str
    revision: str
    phase: ReplicaPhase
    host: str  # where the gateway and health checks reach it (127.0.0.1 on local and docker)
    port: int  # the host-side port (docker: published ephemeral port; local: the PORT given)
    started_at: float  # unix time
    exit_code: int | None = None
    runtime_id: str = ""  # pid or container id
    error: str = ""  # why it could not run, when the runtime knows
    image_digest: str = ""  # the image it runs: the registry's manifest digest when pulled, else the image id


class Runtime(Protocol):
    name: str

    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        """Create and start the replica; returns once the process/container is running (not ready).

        Raises ``arkserve.errors.PermanentError`` for a spec that can never run (missing image
        directory, unknown image) and ``TemporaryError`` when the host lacks capacity now."""
        ...

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace_s``, SIGKILL; then remove. Idempotent."""
        ...

    def list(self) -> list[ReplicaInfo]:
        """Every replica this runtime manages, running or exited (not yet removed)."""
        ...

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None: ...

    def close(self) -> None:
        """Release clients and threads. Replicas keep running (they are adopted on restart)."""
        ...
