"""From store rows to placement's terms, and a host's report: capacity, allocated, free, who holds each GPU.

Shared by the reconciler (which places) and the API (which shows ``GET /api/v1/hosts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from arkserve.capacity.placement import Allocation, GpuSlot, HostCapacity, Size


def size_of(itype: Mapping[str, Any] | None) -> Size:
    """An instance type row's size (a deleted type: nothing)."""
    if not itype:
        return Size(0.0, 0)
    return Size(float(itype.get("cpus") or 0.0), int(itype.get("memory_mb") or 0), int(itype.get("gpus") or 0),
                float(itype.get("gpu_fraction") or 0.0), str(itype.get("gpu_model") or ""))


def indices(text: str) -> tuple[int, ...]:
    """``"0,1"`` -> ``(0, 1)``."""
    return tuple(int(i) for i in text.split(",") if i.strip().isdigit())


UNLIMITED = 2**62  # a ratio of 0: CPUs/memory are accounted and shown, never a reason not to place


def host_capacity(host: Mapping[str, Any], cpu_overcommit: float = 1.0,
                  memory_overcommit: float = 1.0) -> HostCapacity:
    """What placement may hand out on a host: its CPUs and memory times the overcommit ratios (0: no limit), its
    GPUs (never overcommitted)."""
    gpus = tuple(GpuSlot(int(g["index"]), str(g.get("model", "")), int(g.get("memory_mb", 0)))
                 for g in host.get("gpus") or [])
    cpus = float(host["cpus"]) * cpu_overcommit if cpu_overcommit > 0 else float(UNLIMITED)
    memory = int(int(host["memory_mb"]) * memory_overcommit) if memory_overcommit > 0 else UNLIMITED
    return HostCapacity(str(host["name"]), cpus, memory, gpus)


def allocation_of(row: Mapping[str, Any]) -> Allocation:
    """A row of ``arkserve.store.hosts.allocations``."""
    return Allocation(replica=str(row["replica"]), service=str(row["service"]), owner_id=int(row["owner_id"]),
                      host=str(row["host"]), instance_type=str(row["instance_type"]),
                      size=size_of(row if row.get("cpus") is not None else None),
                      gpu_indices=indices(str(row["gpu_indices"])), gpu_share_mb=int(row["gpu_share_mb"]),
                      billing=str(row["billing"]))


def host_report(host: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], cpu_overcommit: float = 1.0,
                memory_overcommit: float = 1.0) -> dict[str, Any]:
    """One host for people: capacity (schedulable), allocated, free; each GPU with the replicas holding it."""
    cap = host_capacity(host, cpu_overcommit or 1.0, memory_overcommit or 1.0)  # shown: the host's own at 0
    mine = [r for r in rows if r["host"] == cap.name]
    allocs = [allocation_of(r) for r in mine]
    cpus = sum(a.size.cpus for a in allocs)
    memory = sum(a.size.memory_mb for a in allocs)
    gpus = []
    for g in host.get("gpus") or []:
        held = [(a, r) for a, r in zip(allocs, mine, strict=True) if int(g["index"]) in a.gpu_indices]
        shared = sum(a.gpu_share_mb for a, _ in held)
        whole = any(a.gpu_share_mb == 0 for a, _ in held)
        gpus.append({**g, "holders": [{"service": r["service"], "replica": a.replica, "owner": r["owner"],
                                       "share_mb": a.gpu_share_mb, "billing": a.billing} for a, r in held],
                     "free": not held, "free_memory_mb": 0 if whole else int(g.get("memory_mb", 0)) - shared})
    return {
        "name": cap.name, "runtime": host.get("runtime", ""), "updated_at": host["updated_at"],
        "gpu_error": host.get("gpu_error", ""),
        "capacity": {"cpus": cap.cpus, "memory_mb": cap.memory_mb, "gpus": len(cap.gpus)},
        "physical": {"cpus": float(host["cpus"]), "memory_mb": int(host["memory_mb"])},
        "overcommit": {"cpus": cpu_overcommit, "memory": memory_overcommit},
        "allocated": {"cpus": cpus, "memory_mb": memory, "gpus": sum(1 for g in gpus if not g["free"]),
                      "replicas": len(allocs)},
        "free": {"cpus": cap.cpus - cpus, "memory_mb": cap.memory_mb - memory,
                 "gpus": sum(1 for g in gpus if g["free"])},
        "gpus": gpus,
    }
