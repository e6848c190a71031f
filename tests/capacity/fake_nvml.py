"""A stand-in for NVML (the ``pynvml`` module of nvidia-ml-py): the only fake capacity tests use.

It has the functions ``arkserve.capacity.inventory.read_gpus`` calls, answering for the GPUs it is given
(name, memory in MiB); ``FakeNVML(init_error=...)`` fails ``nvmlInit`` the way a host without a driver does.
"""

from __future__ import annotations

from dataclasses import dataclass


class NVMLError(Exception):
    pass


@dataclass(frozen=True)
class _Memory:
    total: int
    free: int
    used: int


class FakeNVML:
    NVMLError = NVMLError

    def __init__(self, gpus: list[tuple[str, int]] | None = None, init_error: str = "") -> None:
        self.gpus = gpus or []
        self.init_error = init_error
        self.initialised = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.gpus):
            raise NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self.gpus[handle][0]

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return f"GPU-fake-{handle:04d}".encode()

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:
        total = self.gpus[handle][1] * 1024 * 1024
        return _Memory(total, total, 0)
