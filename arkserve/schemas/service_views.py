"""What the API answers about a service: the service with its replicas and canary revision, its events and
its request records."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkserve.schemas.service_specs import ServiceSpec


class ReplicaOut(BaseModel):
    id: str
    state: str
    revision: str
    endpoint: str
    restarts: int
    started_at: float | None
    ready_at: float | None
    last_error: str
    image_digest: str = ""  # the image it was started from (registry manifest digest, or the local image id)
    gpu_indices: str = ""  # the GPUs placement gave it ("0,1"), or the one it has a share of
    gpu_share_mb: int = 0  # its share of that GPU's memory (fractional instance types)
    billing: str = "payg"  # payg | prepaid


class CanaryOut(BaseModel):
    """A service's canary revision beside the stable one (docs/canary.md)."""

    revision: str
    weight: int = Field(description="percent of requests the canary gets; the stable revision gets the rest")
    replicas: int = Field(description="replicas the canary runs: ceil(replicas x weight / 100), at least 1")
    ready: int
    spec: ServiceSpec


class ServiceOut(BaseModel):
    name: str
    owner: str
    status: str
    reason: str
    message: str
    endpoint: str
    replicas: int
    ready: int
    generation: int
    revision: str
    spec: ServiceSpec
    instances: list[ReplicaOut]
    created_at: float
    updated_at: float
    canary: CanaryOut | None = None  # a second revision beside the stable one; instances lists both's replicas


class EventOut(BaseModel):
    time: float
    service: str
    replica: str
    kind: str
    message: str


class RequestRecordOut(BaseModel):
    time: float
    service: str
    replica: str
    method: str
    path: str
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    access_key: str
    client: str
    request_id: str
    revision: str = ""  # of the replica that served it (the stable revision or the canary's, docs/canary.md)
