"""Hosts through the API and the CLI: capacity, allocated, free and who holds each GPU; fractional types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from arkserve.capacity.inventory import read_inventory
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.sdk.client import ApiError, Client
from arkserve.store import services as service_store
from arkserve.store.db import open_store
from tests.api.conftest import LiveApi, running_api
from tests.capacity.fake_nvml import FakeNVML


def _refused(call: object, status: int, code: str) -> str:
    with pytest.raises(ApiError) as e:
        call()  # type: ignore[operator]
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value.message


def _place(api: LiveApi, service: str) -> str:
    """What the reconciler does before a start: place one new replica of the service (NVML: a fake H200)."""
    store = open_store(api.database_url or f"sqlite:///{api.data_dir}/arkserve.db")
    try:
        placer = Placer(store, "local", ReconcilerConfig(cpu_overcommit=1, memory_overcommit=1),
                        inventory=lambda: read_inventory("gpu-host", FakeNVML([("NVIDIA H200", 143771)])))
        with store.read() as conn:
            svc = service_store.get(conn, service)
        rep = service_store.ReplicaRow(id="r" + os.urandom(4).hex(), service_id=svc.id, revision="x", state="pending")
        return placer.assign(svc, rep)
    finally:
        store.dispose()


def test_hosts_show_capacity_allocated_free_and_gpu_holders(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    spec = {"image": str(app), "port": 8000, "command": "python3 app.py"}
    with running_api(tmp_path) as api, api.client() as admin:
        admin.post("/instance-types", {"name": "gpu.half", "cpus": 1, "memory_mb": 1024, "gpu_fraction": 0.5})
        assert _refused(lambda: admin.post("/instance-types", {"name": "bad", "cpus": 1, "memory_mb": 1,
                                                               "gpus": 1, "gpu_fraction": 0.5}),
                        422, "ValidationFailed")
        admin.post("/instance-types", {"name": "gpu.one", "cpus": 1, "memory_mb": 2048, "gpus": 1})
        admin.post("/services", {"name": "whole", "replicas": 0, "instance_type": "gpu.one", **spec})
        admin.post("/services", {"name": "halves", "replicas": 0, "instance_type": "gpu.half", **spec})
        assert admin.get("/hosts") == []
        paths = httpx.get(f"{api.url}/api/v1/openapi.json").json()["paths"]
        assert "get" in paths["/api/v1/hosts"] and "HostOut" in str(paths["/api/v1/hosts"])
        assert _place(api, "whole") == ""
        assert _place(api, "halves") == "needs 71885 MiB on one GPU (0.5 of a GPU), at most 0 MiB free on any; " \
                                        "held by service whole"
        [host] = admin.get("/hosts")
        assert host["name"] == "gpu-host" and host["runtime"] == "local"
        assert host["allocated"] == {"cpus": 1.0, "memory_mb": 2048, "gpus": 1, "replicas": 1}
        assert host["free"]["gpus"] == 0 and host["capacity"]["gpus"] == 1
        assert host["free"]["cpus"] == host["capacity"]["cpus"] - 1
        [gpu] = host["gpus"]
        assert (gpu["index"], gpu["model"], gpu["memory_mb"], gpu["free"]) == (0, "NVIDIA H200", 143771, False)
        assert [(h["service"], h["owner"], h["share_mb"]) for h in gpu["holders"]] == [("whole", "admin", 0)]
        assert admin.get("/services/whole")["instances"][0]["gpu_indices"] == "0"

        env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml"), "ARKSERVE_ENDPOINT": api.url}
        out = subprocess.run([sys.executable, "-m", "arkserve", "host", "list"], env=env, capture_output=True,
                             text=True, timeout=60, check=True).stdout
        assert "gpu-host" in out and "NVIDIA H200" in out and "whole/r" in out
        listed = json.loads(subprocess.run([sys.executable, "-m", "arkserve", "host", "list", "-o", "json"], env=env,
                                           capture_output=True, text=True, timeout=60, check=True).stdout)
        assert listed == admin.get("/hosts")

        admin.post("/users", {"username": "bob", "password": "bob-password-1"})
        key = admin.post("/keys", {"username": "bob"})
        with Client(api.url, key["access_key"], key["secret_key"]) as bob:
            _refused(lambda: bob.get("/hosts"), 403, "AccessDenied")
