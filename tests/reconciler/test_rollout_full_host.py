"""A rolling update that needs the capacity its own old replica holds, in a real reconciler with the real local
runtime: a 1-GPU host (the host's inventory through a fake NVML, the one fake) and ``billing: prepaid`` with
its one prepaid instance in use. The surge replica waits unplaced; the service's message says why and names the
way out (``--max-surge 0``), and setting it replaces the old replica in place. Before, the message said nothing
of the wait and ``max_surge`` 0 did not help: the pending surge replica counted as new in flight, so the old one
was never drained and the update never ended."""

from __future__ import annotations

import time
from pathlib import Path

from arkserve.billing import prepaid
from arkserve.domain.services import revision
from arkserve.runtimes.local import LocalRuntime
from tests.capacity.conftest import gpu_cluster
from tests.capacity.fake_nvml import FakeNVML
from tests.reconciler.conftest import Cluster, running_cluster


def _message(c: Cluster, name: str) -> str:
    svc = c.service(name)
    assert svc is not None
    return f"{svc.status} ({svc.reason}) {svc.message}"


def _stuck_then_in_place(c: Cluster, name: str, why: str) -> None:
    """Update ``name`` (1 ready replica): the surge replica waits with ``why``, said in the service's message
    with the way out; with max_surge 0 the update completes on the new revision."""
    [old] = c.ready(name)
    c.update(name, env={"FOO": "1"})
    c.wait("the surge replica's wait in the service's message",
           lambda: f"waits: {why}" in _message(c, name), timeout=10)
    message = _message(c, name)
    assert message.startswith("updating (RollingUpdate) 0 of 1 replicas on revision"), message
    assert f"replace them in place: arkserve service update {name} --max-surge 0" in message, message
    assert [r.id for r in c.ready(name)] == [old.id]  # the old replica keeps serving meanwhile
    c.update(name, max_surge=0)
    svc = c.service(name)
    assert svc is not None
    new = revision(svc.spec)
    c.wait("the update done in place", lambda: [(r.revision, r.state) for r in c.replicas(name)] == [(new, "ready")]
           and _message(c, name).startswith("ready (Running)"), timeout=10)
    assert old.id not in [r.id for r in c.replicas(name)]


def test_a_rolling_update_on_a_full_gpu_host_says_why_it_waits_and_completes_in_place(tmp_path: Path) -> None:
    with gpu_cluster(tmp_path, LocalRuntime, FakeNVML([("NVIDIA H200", 143771)])) as c:
        c.create("g", 1, instance_type="gpu.test")
        c.wait("ready", lambda: len(c.ready("g")) == 1)
        _stuck_then_in_place(c, "g", "needs 1 GPU, 0 of 1 free; held by service g")
        assert [r.gpu_indices for r in c.replicas("g")] == ["0"]


def test_a_rolling_update_with_every_prepaid_instance_in_use_completes_in_place(tmp_path: Path) -> None:
    with running_cluster(tmp_path, LocalRuntime) as c:
        with c.store.begin() as conn:
            prepaid.buy(conn, c.owner_id, "cpu.small", 0.0, count=1, period="month", auto_renew=False,
                        now=time.time(), discount=0.0, currency="CNY")
        c.create("p", 1, instance_type="cpu.small", billing="prepaid")
        c.wait("ready", lambda: len(c.ready("p")) == 1)
        _stuck_then_in_place(c, "p", "no free prepaid cpu.small instance (1 of 1 in use)")
        assert [r.billing for r in c.replicas("p")] == ["prepaid"]
