"""Bodies of the capacity hosts: each host's capacity, what replicas hold of it, what is free, and its GPUs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HostGpuHolder(BaseModel):
    service: str
    replica: str
    owner: str
    share_mb: int = Field(description="0: the whole GPU; else its share of the GPU's memory")
    billing: str


class HostGpu(BaseModel):
    index: int
    uuid: str
    model: str
    memory_mb: int
    free: bool = Field(description="no replica holds it or a share of it")
    free_memory_mb: int = Field(description="memory not yet shared out (0 when a replica holds it whole)")
    holders: list[HostGpuHolder]


class HostAmounts(BaseModel):
    cpus: float
    memory_mb: int
    gpus: int
    replicas: int | None = None


class HostOut(BaseModel):
    """A host with its capacity (CPUs and memory times the overcommit ratios), what replicas hold, what is free."""

    name: str
    runtime: str
    updated_at: float
    gpu_error: str = Field(description="why no GPU was read (no NVIDIA driver, ...), '' when NVML answered")
    capacity: HostAmounts
    physical: dict[str, float]
    overcommit: dict[str, float] = Field(description="placement's ratios: capacity = physical x ratio; 0: CPUs or "
                                         "memory are accounted here but never keep a replica from starting")
    allocated: HostAmounts
    free: HostAmounts
    gpus: list[HostGpu]
