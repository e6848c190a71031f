"""Table-driven tests of the pure placement core: CPUs, memory, whole GPUs, GPU shares, prepaid reservations."""

from __future__ import annotations

import pytest

from arkserve.capacity.placement import Allocation, GpuSlot, HostCapacity, Placement, Request, Size, Unfit, place

H200 = GpuSlot(0, "NVIDIA H200", 143771)
ONE_GPU = HostCapacity("h1", 16, 65536, (H200,))
TWO_GPUS = HostCapacity("h1", 16, 65536, (GpuSlot(0, "NVIDIA H200", 80000), GpuSlot(1, "NVIDIA H200", 80000)))
NO_GPU = HostCapacity("h1", 2, 4096)

CPU = Size(1, 1024)
GPU1 = Size(4, 8192, gpus=1)
GPU2 = Size(4, 8192, gpus=2)
HALF = Size(1, 2048, gpu_fraction=0.5)
QUARTER = Size(1, 2048, gpu_fraction=0.25)
SIZES = {"cpu": CPU, "gpu.1x": GPU1, "gpu.2x": GPU2, "gpu.1/2": HALF, "gpu.1/4": QUARTER}


def req(size: str, owner: int = 1, billing: str = "payg", replica: str = "rnew") -> Request:
    return Request(replica, "newsvc", owner, size, SIZES[size], billing)


def held(replica: str, service: str, size: str, gpus: tuple[int, ...] = (), share: int = 0, owner: int = 2,
         billing: str = "payg") -> Allocation:
    return Allocation(replica, service, owner, "h1", size, SIZES[size], gpus, share, billing)


CASES = [
    ("cpu type on an empty host", req("cpu"), [NO_GPU], [], {}, Placement("h1")),
    ("CPUs add up", req("cpu"), [NO_GPU], [held("a", "x", "cpu"), held("b", "y", "cpu")], {},
     Unfit("needs 1 CPU, 0 of 2 free")),
    ("memory adds up", Request("r", "s", 1, "big", Size(0.5, 4000)), [NO_GPU], [held("a", "x", "cpu")], {},
     Unfit("needs 4000 MiB memory, 3072 of 4096 MiB free")),
    ("a GPU type on a host without GPUs", req("gpu.1x"), [NO_GPU], [], {},
     Unfit("needs 1 GPU; this host has no GPU")),
    ("whole GPU by index", req("gpu.1x"), [TWO_GPUS], [], {}, Placement("h1", (0,))),
    ("the next free index", req("gpu.1x"), [TWO_GPUS], [held("a", "x", "gpu.1x", (0,))], {},
     Placement("h1", (1,))),
    ("never two replicas on one whole GPU", req("gpu.1x"), [ONE_GPU], [held("a", "x", "gpu.1x", (0,))], {},
     Unfit("needs 1 GPU, 0 of 1 free; held by service x")),
    ("two GPUs need two free ones", req("gpu.2x"), [TWO_GPUS], [held("a", "x", "gpu.1x", (1,))], {},
     Unfit("needs 2 GPUs, 1 of 2 free; held by service x")),
    ("a model the host lacks", Request("r", "s", 1, "a100", Size(1, 1024, gpus=1, gpu_model="A100")), [ONE_GPU],
     [], {}, Unfit("needs 1 A100 GPU; this host has NVIDIA H200")),
    ("the model matches by name", Request("r", "s", 1, "h200", Size(1, 1024, gpus=1, gpu_model="H200")),
     [ONE_GPU], [], {}, Placement("h1", (0,))),
    ("half a GPU: its share of the memory", req("gpu.1/2"), [ONE_GPU], [], {}, Placement("h1", (0,), 71885)),
    ("halves pack onto one GPU", req("gpu.1/2"), [ONE_GPU], [held("a", "x", "gpu.1/2", (0,), 71885)], {},
     Placement("h1", (0,), 71885)),
    ("a third half does not fit", req("gpu.1/2"), [ONE_GPU],
     [held("a", "x", "gpu.1/2", (0,), 71885), held("b", "y", "gpu.1/2", (0,), 71885)], {},
     Unfit("needs 71885 MiB on one GPU (0.5 of a GPU), at most 1 MiB free on any; held by service x, service y")),
    ("best fit: a share goes where a share already is", req("gpu.1/4"), [TWO_GPUS],
     [held("a", "x", "gpu.1/2", (1,), 40000)], {}, Placement("h1", (1,), 20000)),
    ("a share never lands on a GPU held whole", req("gpu.1/2"), [ONE_GPU], [held("a", "x", "gpu.1x", (0,))], {},
     Unfit("needs 71885 MiB on one GPU (0.5 of a GPU), at most 0 MiB free on any; held by service x")),
    ("a whole GPU is not free while shares are on it", req("gpu.1x"), [ONE_GPU],
     [held("a", "x", "gpu.1/4", (0,), 35942)], {}, Unfit("needs 1 GPU, 0 of 1 free; held by service x")),
    ("another user's prepaid reservation holds against pay-as-you-go", req("gpu.1x", owner=1), [TWO_GPUS],
     [held("a", "x", "gpu.1x", (0,), owner=3)], {2: {"gpu.1x": 1}},
     Unfit("the free capacity is reserved for other users' prepaid instances (1 GPU reserved and not in use)")),
    ("the owner's own prepaid replica takes its reservation", req("gpu.1x", owner=2, billing="prepaid"),
     [TWO_GPUS], [held("a", "x", "gpu.1x", (0,), owner=3)], {2: {"gpu.1x": 1}}, Placement("h1", (1,))),
    ("a reservation in use no longer holds", req("gpu.1x", owner=1), [TWO_GPUS],
     [held("a", "x", "gpu.1x", (0,), owner=2, billing="prepaid")], {2: {"gpu.1x": 1}}, Placement("h1", (1,))),
    ("reserved CPU holds too", req("cpu", owner=1), [NO_GPU], [held("a", "x", "cpu", owner=3)], {2: {"cpu": 1}},
     Unfit("the free capacity is reserved for other users' prepaid instances (1 CPU reserved and not in use)")),
    ("reserved halves round up to a whole GPU", req("gpu.1x", owner=1), [TWO_GPUS], [], {2: {"gpu.1/2": 1}},
     Placement("h1", (0,))),
    ("... and hold it", req("gpu.1x", owner=1), [TWO_GPUS], [held("a", "x", "gpu.1x", (0,), owner=3)],
     {2: {"gpu.1/2": 1}},
     Unfit("the free capacity is reserved for other users' prepaid instances (1 GPU reserved and not in use)")),
    ("a GPU reserved but missing does not keep a CPU replica out", req("cpu", owner=1), [NO_GPU], [],
     {2: {"gpu.1x": 1}}, Placement("h1")),
    ("... nor when every GPU is held", req("cpu", owner=1), [ONE_GPU], [held("a", "x", "gpu.1x", (0,), owner=3)],
     {2: {"gpu.1/2": 2}}, Placement("h1")),
    ("a CPU replica still may not take reserved CPUs", req("cpu", owner=1), [NO_GPU], [],
     {2: {"gpu.1x": 1, "cpu": 2}},
     Unfit("the free capacity is reserved for other users' prepaid instances (2 CPUs reserved and not in use)")),
    ("its own old placement does not count (a restart)", req("gpu.1x", replica="a"), [ONE_GPU],
     [held("a", "x", "gpu.1x", (0,))], {}, Placement("h1", (0,))),
    ("no host yet", req("cpu"), [], [], {}, Unfit("no host has reported its capacity yet")),
    ("two hosts: the first with room", req("gpu.1x"), [ONE_GPU, HostCapacity("h2", 8, 8192, (H200,))],
     [held("a", "x", "gpu.1x", (0,))], {}, Placement("h2", (0,))),
]


@pytest.mark.parametrize(("name", "request_", "hosts", "allocations", "reservations", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_place(name: str, request_: Request, hosts: list[HostCapacity], allocations: list[Allocation],
               reservations: dict[int, dict[str, int]], expected: Placement | Unfit) -> None:
    assert place(request_, hosts, allocations, reservations, SIZES) == expected


def test_two_hosts_say_why_each_refused() -> None:
    hosts = [ONE_GPU, HostCapacity("h2", 8, 8192)]
    got = place(req("gpu.1x"), hosts, [held("a", "x", "gpu.1x", (0,))])
    assert got == Unfit("h1: needs 1 GPU, 0 of 1 free; held by service x; h2: needs 1 GPU; this host has no GPU")
