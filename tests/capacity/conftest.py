"""A real reconciler over a real store whose host inventory comes through a fake NVML (the one fake), with the
in-memory runtime for fast tests or the real local runtime; instance types sized for small machines."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arkserve.capacity.inventory import read_inventory
from arkserve.reconciler.loop import Reconciler
from arkserve.store import instance_types
from arkserve.store import users as user_store
from arkserve.store.db import open_store
from tests.capacity.fake_nvml import FakeNVML
from tests.reconciler.conftest import FAST, Cluster

TYPES = (
    {"name": "gpu.test", "cpus": 0.5, "memory_mb": 128, "gpus": 1},
    {"name": "gpu.half", "cpus": 0.5, "memory_mb": 128, "gpus": 0, "gpu_fraction": 0.5},
)


@dataclass
class GpuCluster(Cluster):
    nvml: Any = None  # None: the real pynvml

    def start(self) -> None:
        nvml = self.nvml
        self.reconciler = Reconciler(self.store, self.runtime, self.data_dir, self.config,
                                     inventory=lambda: read_inventory("testhost", nvml))
        self.thread = threading.Thread(target=self.reconciler.run, daemon=True)
        self.thread.start()

    def spec(self, **overrides: Any) -> dict[str, Any]:
        return super().spec(**{"startup_timeout_s": 300, **overrides})


@contextmanager
def gpu_cluster(tmp_path: Path, make_runtime: Callable[[Path], Any], nvml: FakeNVML | None,
                app: Path | None = None) -> Iterator[GpuCluster]:
    data = tmp_path / "data"
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(app or Path(__file__).parent.parent / "reconciler" / "app.py", app_dir / "app.py")
    store = open_store(f"sqlite:///{data}/arkserve.db")
    with store.begin() as conn:
        instance_types.seed(conn, [])
        for t in TYPES:
            instance_types.create(conn, dict(t))
        owner = user_store.create(conn, "owner", "h", "user").id
    c = GpuCluster(store, data, app_dir, make_runtime(data), owner_id=owner, config=FAST, nvml=nvml)
    c.start()
    try:
        yield c
    finally:
        c.close()


PYTHON = sys.executable
