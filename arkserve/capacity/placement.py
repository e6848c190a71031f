"""Placement, a pure core: where a new replica fits, or why it does not (in words a user can act on).

Input: the hosts' capacity, what replicas hold now (:class:`Allocation`), prepaid reservations
(``{user_id: {instance_type: count}}``, from ``arkserve.billing.admission.reserved``) and the instance types'
sizes. Rules:

- CPUs and memory add up per host (the caller passes schedulable amounts: the host's times its overcommit).
- Whole GPUs are handed out by index, one replica per GPU; a GPU with any share on it is not free.
- A fractional type (``gpu_fraction`` 0 < f < 1) gets ``f`` of one GPU's memory; shares are packed onto a GPU
  (best fit: the GPU with the least room that still fits) until its memory is spoken for. Packing, not isolation.
- Prepaid instances are capacity reserved for their owner: what another user's replicas leave free must still
  hold every reservation not yet in use (counted cluster-wide: CPUs, memory, whole GPUs, free on all hosts
  together, against the owner's prepaid replicas on any host; the shares of fractional reservations round up to
  whole GPUs). An aggregate: what is free in all may be spread so that a reserved instance fits on no one host.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EPSILON = 1e-9


@dataclass(frozen=True)
class GpuSlot:
    index: int
    model: str
    memory_mb: int


@dataclass(frozen=True)
class HostCapacity:
    name: str
    cpus: float  # schedulable (overcommit applied)
    memory_mb: int
    gpus: tuple[GpuSlot, ...] = ()


@dataclass(frozen=True)
class Size:
    """What one replica of an instance type takes."""

    cpus: float
    memory_mb: int
    gpus: int = 0
    gpu_fraction: float = 0.0
    gpu_model: str = ""  # "" = any model; else a GPU whose model contains it (case-insensitive)


@dataclass(frozen=True)
class Allocation:
    replica: str
    service: str
    owner_id: int
    host: str
    instance_type: str
    size: Size
    gpu_indices: tuple[int, ...] = ()
    gpu_share_mb: int = 0
    billing: str = "payg"


@dataclass(frozen=True)
class Request:
    replica: str
    service: str
    owner_id: int
    instance_type: str
    size: Size
    billing: str = "payg"


@dataclass(frozen=True)
class Placement:
    host: str
    gpu_indices: tuple[int, ...] = ()
    gpu_share_mb: int = 0


@dataclass(frozen=True)
class Unfit:
    message: str


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}" + ("" if n == 1 else "s")


def _held_by(allocs: Iterable[Allocation]) -> str:
    names = sorted({f"service {a.service}" for a in allocs})
    return "; held by " + ", ".join(names) if names else ""


def _matches(gpu: GpuSlot, model: str) -> bool:
    return not model or model.lower() in gpu.model.lower() or gpu.model.lower() in model.lower()


@dataclass
class _HostState:
    host: HostCapacity
    allocs: list[Allocation]

    @property
    def free_cpus(self) -> float:
        return self.host.cpus - sum(a.size.cpus for a in self.allocs)

    @property
    def free_memory(self) -> int:
        return self.host.memory_mb - sum(a.size.memory_mb for a in self.allocs)

    def holders(self, index: int) -> list[Allocation]:
        return [a for a in self.allocs if index in a.gpu_indices]

    def whole_free(self, model: str = "") -> list[GpuSlot]:
        return [g for g in self.host.gpus if _matches(g, model) and not self.holders(g.index)]

    def share_room(self, gpu: GpuSlot) -> int:
        """Memory not yet shared out on a GPU; -1 when a replica holds it whole."""
        holders = self.holders(gpu.index)
        if any(a.gpu_share_mb == 0 for a in holders):
            return -1
        return gpu.memory_mb - sum(a.gpu_share_mb for a in holders)


def _fit_host(req: Request, st: _HostState) -> Placement | Unfit:
    size, host = req.size, st.host
    model = f"{size.gpu_model} " if size.gpu_model else ""
    candidates = [g for g in host.gpus if _matches(g, size.gpu_model)]
    if (size.gpus > 0 or size.gpu_fraction > 0) and not candidates:
        if not host.gpus:
            return Unfit(f"needs {_plural(size.gpus or size.gpu_fraction, model + 'GPU')}; this host has no GPU")
        have = ", ".join(sorted({g.model for g in host.gpus}))
        return Unfit(f"needs {_plural(size.gpus or size.gpu_fraction, model + 'GPU')}; this host has {have}")
    if size.cpus > st.free_cpus + EPSILON:
        return Unfit(f"needs {_plural(size.cpus, 'CPU')}, {max(0.0, st.free_cpus):g} of {host.cpus:g} free")
    if size.memory_mb > st.free_memory:
        return Unfit(f"needs {size.memory_mb} MiB memory, {max(0, st.free_memory)} of {host.memory_mb} MiB free")
    if size.gpus > 0:
        free = st.whole_free(size.gpu_model)
        if len(free) < size.gpus:
            busy = [a for g in candidates for a in st.holders(g.index)]
            return Unfit(f"needs {_plural(size.gpus, model + 'GPU')}, {len(free)} of {len(candidates)} free"
                         + _held_by(busy))
        return Placement(host.name, tuple(g.index for g in free[:size.gpus]))
    if size.gpu_fraction > 0:
        fits = []
        for g in candidates:
            share = int(g.memory_mb * size.gpu_fraction)
            room = st.share_room(g)
            if room >= share:
                fits.append((room - share, g.index, share))
        if not fits:
            best = max((st.share_room(g) for g in candidates), default=0)
            share = int(candidates[0].memory_mb * size.gpu_fraction)
            busy = [a for g in candidates for a in st.holders(g.index)]
            return Unfit(f"needs {share} MiB on one {model}GPU ({size.gpu_fraction:g} of a GPU), at most "
                         f"{max(0, best)} MiB free on any" + _held_by(busy))
        _, index, share = min(fits)  # best fit: pack onto the fullest GPU that still has room
        return Placement(host.name, (index,), share)
    return Placement(host.name)


def _reserved_need(req: Request, allocations: list[Allocation], reservations: Mapping[int, Mapping[str, int]],
                   sizes: Mapping[str, Size], free_gpus: int) -> tuple[float, int, int]:
    """CPUs, memory and whole GPUs other users' prepaid instances reserve and do not use yet. The CPUs and memory
    of GPU instances count only as far as their GPUs are there to be had (``free_gpus``): a GPU instance that
    could not be placed anyway keeps nobody's CPU replica out."""
    cpus, memory, gpus, fraction = 0.0, 0, 0, 0.0
    gpu_cpus, gpu_memory = 0.0, 0
    for user, types in reservations.items():
        if user == req.owner_id:
            continue
        for itype, count in types.items():
            used = sum(1 for a in allocations if a.owner_id == user and a.instance_type == itype
                       and a.billing == "prepaid")
            free = max(0, count - used)
            size = sizes.get(itype)
            if free and size is not None:
                on_gpu = bool(size.gpus or size.gpu_fraction)
                cpus += 0 if on_gpu else free * size.cpus
                memory += 0 if on_gpu else free * size.memory_mb
                gpu_cpus += free * size.cpus if on_gpu else 0
                gpu_memory += free * size.memory_mb if on_gpu else 0
                gpus += free * size.gpus
                fraction += free * size.gpu_fraction
    whole = gpus + math.ceil(fraction - EPSILON)
    placeable = min(1.0, free_gpus / whole) if whole else 1.0
    return cpus + gpu_cpus * placeable, memory + math.ceil(gpu_memory * placeable), whole


def _free(states: list[_HostState]) -> tuple[float, int, int]:
    """Free CPUs, memory and whole GPUs over all hosts."""
    return (sum(s.free_cpus for s in states), sum(s.free_memory for s in states),
            sum(len(s.whole_free()) for s in states))


def _honours_reservations(req: Request, placed: Placement, states: list[_HostState],
                          allocations: list[Allocation], reservations: Mapping[int, Mapping[str, int]],
                          sizes: Mapping[str, Size]) -> str:
    """"" when the placement leaves every other user's unused prepaid capacity free; else why not."""
    before = _free(states)
    need_cpus, need_memory, need_gpus = _reserved_need(req, allocations, reservations, sizes, before[2])
    if not (need_cpus or need_memory or need_gpus):
        return ""
    after = Allocation(req.replica, req.service, req.owner_id, placed.host, req.instance_type, req.size,
                       placed.gpu_indices, placed.gpu_share_mb, req.billing)
    trial = [_HostState(s.host, s.allocs + ([after] if s.host.name == placed.host else [])) for s in states]
    free_cpus, free_memory, free_gpus = _free(trial)
    # only what this placement takes counts against it: a CPU replica is not kept out because GPUs reserved by
    # someone else are missing (that shortage is not its doing, and placing it does not deepen it)
    short = []
    if need_gpus and free_gpus < need_gpus and free_gpus < before[2]:
        short.append(f"{_plural(need_gpus, 'GPU')}")
    if free_cpus + EPSILON < need_cpus and free_cpus + EPSILON < before[0]:
        short.append(f"{_plural(need_cpus, 'CPU')}")
    if free_memory < need_memory and free_memory < before[1]:
        short.append(f"{need_memory} MiB memory")
    if short:
        return ("the free capacity is reserved for other users' prepaid instances (" + ", ".join(short)
                + " reserved and not in use)")
    return ""


def place(req: Request, hosts: Iterable[HostCapacity], allocations: Iterable[Allocation],
          reservations: Mapping[int, Mapping[str, int]] | None = None,
          sizes: Mapping[str, Size] | None = None,
          cluster: Iterable[HostCapacity] = ()) -> Placement | Unfit:
    """Where ``req`` fits (the first host, by name, that has room and leaves reservations whole), else why not.

    ``hosts`` are the hosts it may go on; ``cluster`` every other host there is (a reconciler places on its own
    host only, but prepaid reservations are counted over all of them: their free capacity counts toward what is
    reserved). ``allocations`` are what replicas hold on every host (one in use on another host is a reservation
    in use) and must not include ``req.replica`` itself; ``sizes`` maps instance types to their size (needed for
    ``reservations``)."""
    allocs = [a for a in allocations if a.replica != req.replica]
    states = [_HostState(h, [a for a in allocs if a.host == h.name]) for h in sorted(hosts, key=lambda h: h.name)]
    if not states:
        return Unfit("no host has reported its capacity yet")
    names = {s.host.name for s in states}
    everywhere = states + [_HostState(h, [a for a in allocs if a.host == h.name])
                           for h in sorted(cluster, key=lambda h: h.name) if h.name not in names]
    reasons = []
    for st in states:
        result = _fit_host(req, st)
        if isinstance(result, Placement):
            why = _honours_reservations(req, result, everywhere, allocs, reservations or {}, sizes or {})
            if not why:
                return result
            result = Unfit(why)
        reasons.append(result.message if len(states) == 1 else f"{st.host.name}: {result.message}")
    return Unfit("; ".join(reasons))
