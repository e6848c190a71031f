"""The host inventory through NVML: GPUs from a fake NVML, and the real binding on this (driverless) host."""

from __future__ import annotations

from arkserve.capacity.inventory import Gpu, read_gpus, read_inventory
from tests.capacity.fake_nvml import FakeNVML


def test_gpus_come_from_nvml_by_index() -> None:
    nvml = FakeNVML([("NVIDIA H200", 143771), ("NVIDIA H200", 143771)])
    gpus, error = read_gpus(nvml)
    assert error == ""
    assert gpus == [Gpu(0, "GPU-fake-0000", "NVIDIA H200", 143771), Gpu(1, "GPU-fake-0001", "NVIDIA H200", 143771)]
    assert nvml.initialised == 0  # shut down again


def test_no_driver_is_no_gpu_and_a_reason() -> None:
    gpus, error = read_gpus(FakeNVML(init_error="Driver Not Loaded"))
    assert (gpus, error) == ([], "no NVIDIA driver: Driver Not Loaded")


def test_the_real_binding_without_a_driver_reads_no_gpu_and_never_fails() -> None:
    inv = read_inventory("here")  # pynvml itself: on a host without an NVIDIA driver, no GPU and why
    assert inv.name == "here" and inv.cpus >= 1 and inv.memory_mb > 0
    if not inv.gpus:
        assert inv.gpu_error.startswith("no NVIDIA driver")
