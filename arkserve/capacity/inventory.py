"""This host's inventory: CPUs, memory and NVIDIA GPUs, the GPUs read through NVML (``nvidia-ml-py``).

NVML is the only boundary with the hardware: :func:`read_gpus` takes the NVML module as an argument
(``pynvml`` by default), so tests hand it a fake with the same functions. No driver, no library, no GPU:
an empty list and the reason in words, never an error.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML's index, as CUDA_VISIBLE_DEVICES and Docker's device_ids count
    uuid: str
    model: str
    memory_mb: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HostInventory:
    name: str
    cpus: int
    memory_mb: int
    gpus: tuple[Gpu, ...] = ()
    gpu_error: str = ""  # why no GPU was read ("" when NVML answered, GPUs or not)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml() -> Any:
    import pynvml  # nvidia-ml-py: a ctypes binding; loading libnvidia-ml happens in nvmlInit

    return pynvml


def read_gpus(nvml: Any | None = None) -> tuple[list[Gpu], str]:
    """The GPUs NVML reports, and ``""``; or ``[]`` and why none could be read (no driver, no library)."""
    try:
        nvml = _nvml() if nvml is None else nvml
    except ImportError as exc:
        return [], f"nvidia-ml-py is not installed ({exc})"
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ... (and OSError from ctypes)
        return [], f"no NVIDIA driver: {_text(exc) or type(exc).__name__}"
    try:
        gpus = []
        for i in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(Gpu(index=i, uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                            model=_text(nvml.nvmlDeviceGetName(handle)),
                            memory_mb=int(memory.total) // (1024 * 1024)))
        return gpus, ""
    except Exception as exc:
        return [], f"NVML failed: {_text(exc) or type(exc).__name__}"
    finally:
        with contextlib.suppress(Exception):  # a failed shutdown changes nothing we read
            nvml.nvmlShutdown()


def _memory_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // (1024 * 1024)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def read_inventory(name: str = "", nvml: Any | None = None) -> HostInventory:
    """This host: its name (``socket.gethostname()`` unless given), CPUs it may use, memory, GPUs."""
    gpus, error = read_gpus(nvml)
    return HostInventory(name=name or socket.gethostname(), cpus=_cpus(), memory_mb=_memory_mb(),
                         gpus=tuple(gpus), gpu_error=error)
