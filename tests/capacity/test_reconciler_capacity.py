"""Placement in a running reconciler: a real store, the host's inventory through a fake NVML (the one fake),
the in-memory runtime (nothing to start) or the real local runtime (a process that prints what it sees)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from arkserve.capacity.inventory import read_gpus
from arkserve.runtimes.local import LocalRuntime
from arkserve.store import hosts as host_store
from tests.capacity.conftest import GpuCluster, gpu_cluster
from tests.capacity.fake_nvml import FakeNVML
from tests.runtimes.fake import FakeHost, FakeRuntime


def fake_runtime(gpus: int) -> FakeRuntime:
    return FakeRuntime(FakeHost(gpus=gpus), clock=time.time)  # started now: starting until the 300 s timeout


def placed(c: GpuCluster, name: str) -> list[tuple[str, str, int]]:
    return [(r.state, r.gpu_indices, r.gpu_share_mb) for r in c.replicas(name)]


def status(c: GpuCluster, name: str) -> tuple[str, str, str]:
    svc = c.service(name)
    assert svc is not None
    return svc.status, svc.reason, svc.message


def started_spec_gpus(rt: FakeRuntime, service: str) -> list[tuple[int, ...]]:
    return [r.spec.gpu_indices for (s, _), r in rt.host.replicas.items() if s == service]


def test_two_replicas_never_share_a_whole_gpu_a_third_waits_and_starts_when_one_stops(tmp_path: Path) -> None:
    rt = fake_runtime(1)
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([("NVIDIA H200", 143771)])) as c:
        c.create("first", 1, instance_type="gpu.test")
        c.wait("first placed", lambda: placed(c, "first") == [("starting", "0", 0)])
        assert started_spec_gpus(rt, "first") == [(0,)]
        c.create("second", 1, instance_type="gpu.test")
        c.wait("second unschedulable", lambda: status(c, "second")[1] == "Unschedulable")
        st, _, message = status(c, "second")
        assert st == "pending"
        assert "needs 1 GPU, 0 of 1 free; held by service first" in message
        assert placed(c, "second") == [("pending", "", 0)] and started_spec_gpus(rt, "second") == []
        assert any("waits: needs 1 GPU" in m for m in c.event_messages("second", "unschedulable"))
        c.scale("first", 0)
        c.wait("second placed once first stopped", lambda: placed(c, "second") == [("starting", "0", 0)])
        assert started_spec_gpus(rt, "second") == [(0,)] and started_spec_gpus(rt, "first") == []
        c.wait("the status moves on", lambda: status(c, "second")[1] != "Unschedulable")
        with c.store.read() as conn:
            [host] = host_store.list_all(conn)
        assert (host["name"], host["runtime"]) == ("testhost", "fake")
        assert host["gpus"] == [{"index": 0, "uuid": "GPU-fake-0000", "model": "NVIDIA H200", "memory_mb": 143771}]


def test_fractional_types_pack_by_memory(tmp_path: Path) -> None:
    rt = fake_runtime(1)
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([("NVIDIA H200", 80000)])) as c:
        c.create("halves", 3, instance_type="gpu.half")
        c.wait("two halves placed, one waiting",
               lambda: sorted(placed(c, "halves")) == [("pending", "", 0), ("starting", "0", 40000),
                                                       ("starting", "0", 40000)])
        c.wait("unschedulable", lambda: status(c, "halves")[1] == "Unschedulable")
        assert "needs 40000 MiB on one GPU (0.5 of a GPU), at most 0 MiB free on any" in status(c, "halves")[2]
        specs = [r.spec for (s, _), r in rt.host.replicas.items() if s == "halves"]
        assert [(s.gpu_indices, s.gpu_memory_mb) for s in specs] == [((0,), 40000)] * 2
        assert {s.env["ARK_GPU_MEMORY_MB"] for s in specs} == {"40000"}
        assert {s.env["ARK_GPU_MEMORY_FRACTION"] for s in specs} == {"0.500"}
        c.create("whole", 1, instance_type="gpu.test")  # a GPU with shares on it is not free
        c.wait("whole waits", lambda: status(c, "whole")[1] == "Unschedulable")
        assert "needs 1 GPU, 0 of 1 free; held by service halves" in status(c, "whole")[2]


def test_a_gpu_type_on_the_real_host_without_a_gpu_stays_unschedulable(tmp_path: Path) -> None:
    if read_gpus()[0]:
        pytest.skip("this host has an NVIDIA GPU (bench/gpu/check.sh covers it)")
    with gpu_cluster(tmp_path, lambda _: fake_runtime(0), None) as c:  # None: the real pynvml
        c.create("wants-gpu", 1, instance_type="gpu.test")
        c.create("cpu-only", 1)
        c.wait("unschedulable", lambda: status(c, "wants-gpu")[1] == "Unschedulable")
        assert status(c, "wants-gpu")[2] == "0/1 replicas ready; needs 1 GPU; this host has no GPU"
        c.wait("the CPU service is placed", lambda: [s for s, _, _ in placed(c, "cpu-only")] == ["starting"])
        with c.store.read() as conn:
            [host] = host_store.list_all(conn)
        assert host["gpus"] == [] and host["gpu_error"].startswith("no NVIDIA driver")


APP = '''import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
SEEN = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
print("sees", json.dumps(SEEN), flush=True)
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(SEEN).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


def test_local_runtime_gives_a_replica_exactly_its_gpu(tmp_path: Path) -> None:
    app = tmp_path / "env_app.py"
    app.write_text(APP)
    nvml = FakeNVML([("NVIDIA H200", 143771), ("NVIDIA H200", 143771)])
    with gpu_cluster(tmp_path, LocalRuntime, nvml, app=app) as c:
        c.create("gpu-a", 1, instance_type="gpu.test", health_path="/")
        c.wait("a ready", lambda: len(c.ready("gpu-a")) == 1)
        c.create("gpu-b", 1, instance_type="gpu.test", health_path="/")
        c.wait("b ready", lambda: len(c.ready("gpu-b")) == 1)
        seen = {}
        for name in ("gpu-a", "gpu-b"):
            [rep] = c.ready(name)
            with urllib.request.urlopen(f"http://127.0.0.1:{rep.port}/", timeout=5) as resp:
                body = json.loads(resp.read())
                seen[name] = (rep.gpu_indices, body["CUDA_VISIBLE_DEVICES"], body["CUDA_DEVICE_ORDER"])
        assert seen == {"gpu-a": ("0", "0", "PCI_BUS_ID"), "gpu-b": ("1", "1", "PCI_BUS_ID")}  # numbered as NVML does


def test_a_prepaid_reservation_holds_against_another_users_pay_as_you_go(tmp_path: Path) -> None:
    from arkserve.billing import prepaid
    from arkserve.store import services as service_store
    from arkserve.store import users as user_store

    rt = fake_runtime(1)
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([("NVIDIA H200", 143771)])) as c:
        with c.store.begin() as conn:  # the owner holds one prepaid gpu.test instance (free of charge here)
            prepaid.buy(conn, c.owner_id, "gpu.test", 0.0, count=1, period="month", auto_renew=False,
                        now=time.time(), discount=0.0, currency="CNY")
            bob = user_store.create(conn, "bob", "h", "user").id
            service_store.create(conn, "bobs", bob, c.spec(instance_type="gpu.test"), 1, 20101)
        c.wait("bob's pay-as-you-go replica waits", lambda: status(c, "bobs")[1] == "Unschedulable")
        assert "reserved for other users' prepaid instances (1 GPU reserved and not in use)" in status(c, "bobs")[2]
        c.create("mine", 1, instance_type="gpu.test")
        c.wait("the owner's replica runs on its prepaid instance", lambda: placed(c, "mine") == [("starting", "0", 0)])
        assert [r.billing for r in c.replicas("mine")] == ["prepaid"]
        c.wait("bob waits for the GPU now", lambda: "held by service mine" in status(c, "bobs")[2])
        assert started_spec_gpus(rt, "bobs") == []


def test_a_cluster_scheduled_runtime_is_not_fitted_onto_the_reconcilers_host(tmp_path: Path) -> None:
    """On Kubernetes the cluster places Pods: a GPU replica starts although the reconciler's own host has no
    GPU, asks the runtime for its whole GPU (nvidia.com/gpu) without host indices, and keeps its billing."""
    rt = fake_runtime(8)  # the cluster's nodes have GPUs; the reconciler's own host (NVML below) has none
    rt.name = "kubernetes"
    with gpu_cluster(tmp_path, lambda _: rt, FakeNVML([])) as c:
        c.create("wants-gpu", 2, instance_type="gpu.test")
        c.wait("both started", lambda: [s for s, _, _ in placed(c, "wants-gpu")] == ["starting"] * 2)
        specs = [r.spec for (s, _), r in rt.host.replicas.items() if s == "wants-gpu"]
        assert [(s.gpus, s.gpu_indices) for s in specs] == [(1, ())] * 2
        assert {(r.node, r.billing) for r in c.replicas("wants-gpu")} == {("kubernetes", "payg")}
