"""GPU quotas (docs/billing.md, Quotas): a canary's replicas count at the canary's own instance type (GPUs and price),
not the stable one's, on every path that grows a service (API scale, autoscaler); a fractional-GPU type counts
ceil(replicas x fraction) GPUs per service part, in the admission check and in the use shown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from arkserve.billing import accounts, guard
from arkserve.billing.prepaid import InsufficientBalance
from arkserve.sdk.client import ApiError, Client
from arkserve.settings import BillingSettings
from arkserve.store import services as service_store
from arkserve.store.tables import instance_types, services
from tests.api.conftest import LiveApi, running_api
from tests.billing.conftest import Billing

APP = {"image": "/usr/bin", "port": 27777, "command": "python3 app.py"}


@pytest.fixture
def billed_api(tmp_path: Path, api_database_url: str) -> Iterator[LiveApi]:
    with running_api(tmp_path, **{"store.database_url": api_database_url, "billing.enforce": True}) as api:
        with api.client() as admin:
            admin.post("/instance-types", {"name": "gpu.1x", "cpus": 1, "memory_mb": 512, "gpus": 1,
                                           "price_per_hour": 30})
            admin.post("/instance-types", {"name": "gpu.half", "cpus": 1, "memory_mb": 512, "gpu_fraction": 0.5,
                                           "price_per_hour": 15})
            admin.post("/instance-types", {"name": "cpu.free", "cpus": 1, "memory_mb": 512, "price_per_hour": 0})
        yield api


def _user(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": f"{name}-password-1"})
        key = admin.post("/keys", {"username": name})
        admin.post("/billing/topup", {"username": name, "amount": 10})
    return api.client(key["access_key"], key["secret_key"])


def _refused(call: Callable[[], Any], status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value


def test_a_canary_of_a_gpu_type_cannot_exceed_max_gpus(billed_api: LiveApi) -> None:
    with _user(billed_api, "alice") as alice, billed_api.client() as admin:
        admin.request("PUT", "/quotas/alice", json={"max_gpus": 1, "max_replicas": 20})
        alice.post("/services", {"name": "cs", "instance_type": "cpu.small", "replicas": 0, **APP})
        alice.patch("/services/cs", {"instance_type": "gpu.1x", "canary": 99})  # 0 stable + 1 canary GPU: fits
        assert alice.get("/quotas/alice")["used_gpus"] == 1
        err = _refused(lambda: alice.patch("/services/cs", {"replicas": 6}), 403, "QuotaExceeded")  # 6 canary GPUs
        assert "gpus" in err.message and "limit 1" in err.message
        assert alice.get("/services/cs")["replicas"] == 0  # nothing changed
        assert (alice.get("/quotas/alice")["used_gpus"], alice.get("/quotas/alice")["used_replicas"]) == (1, 1)
        admin.request("PUT", "/quotas/alice", json={"max_gpus": 2, "max_replicas": 20})
        assert alice.patch("/services/cs", {"replicas": 2})["replicas"] == 2  # 2 cpu + 2 canary GPUs
        assert alice.get("/quotas/alice")["used_gpus"] == 2
        _refused(lambda: alice.patch("/services/cs", {"replicas": 3}), 403, "QuotaExceeded")
        alice.post("/services/cs/canary/rollback", {})
        assert alice.get("/quotas/alice")["used_gpus"] == 0  # the stable cpu.small replicas have none


def test_starting_a_canary_while_scaling_counts_the_stable_part_at_its_type(billed_api: LiveApi) -> None:
    with _user(billed_api, "carol") as carol, billed_api.client() as admin:
        admin.request("PUT", "/quotas/carol", json={"max_gpus": 1, "max_replicas": 20})
        carol.post("/services", {"name": "g", "instance_type": "gpu.1x", "replicas": 1, **APP})
        # 5 stable gpu.1x replicas (5 GPUs) beside a cpu.small canary: the stable part is what grows
        err = _refused(lambda: carol.patch("/services/g", {"instance_type": "cpu.small", "canary": 10, "replicas": 5}),
                       403, "QuotaExceeded")
        assert "gpus" in err.message
        assert carol.get("/services/g")["replicas"] == 1 and carol.get("/quotas/carol")["used_gpus"] == 1
        assert carol.patch("/services/g", {"instance_type": "cpu.small", "canary": 10})["replicas"] == 1


def test_a_canarys_new_replicas_need_a_balance_at_the_canarys_price(billed_api: LiveApi) -> None:
    with _user(billed_api, "bob") as bob, billed_api.client() as admin:
        bob.post("/services", {"name": "web", "instance_type": "cpu.free", "replicas": 1, **APP})
        bob.patch("/services/web", {"instance_type": "gpu.1x", "canary": 50})  # 1 free + 1 priced canary
        admin.post("/billing/adjustments", {"username": "bob", "amount": -10, "note": "spent"})
        err = _refused(lambda: bob.patch("/services/web", {"replicas": 3}), 402, "InsufficientBalance")
        assert "0.00 CNY" in err.message  # 3 free + 2 priced canary replicas: the canary's price needs a balance
        assert bob.get("/services/web")["replicas"] == 1
        assert bob.patch("/services/web", {"replicas": 1})["replicas"] == 1  # no growth: never refused


def test_gpu_shares_count_against_max_gpus(billed_api: LiveApi) -> None:
    with _user(billed_api, "alice") as alice, billed_api.client() as admin:
        admin.request("PUT", "/quotas/alice", json={"max_gpus": 0, "max_replicas": 20})
        err = _refused(lambda: alice.post("/services", {"name": "half", "instance_type": "gpu.half", "replicas": 4,
                                                        **APP}), 403, "QuotaExceeded")
        assert "gpus 0 in use + 2 asked > limit 0" in err.message  # 4 x 0.5 = 2 GPUs
        _refused(lambda: alice.get("/services/half"), 404, "ServiceNotFound")
        _refused(lambda: alice.post("/services", {"name": "whole", "instance_type": "gpu.1x", "replicas": 1, **APP}),
                 403, "QuotaExceeded")
        admin.request("PUT", "/quotas/alice", json={"max_gpus": 2, "max_replicas": 20})
        alice.post("/services", {"name": "half", "instance_type": "gpu.half", "replicas": 4, **APP})
        assert alice.get("/quotas/alice")["used_gpus"] == 2
        err = _refused(lambda: alice.post("/services", {"name": "one", "instance_type": "gpu.half", "replicas": 1,
                                                        **APP}), 403, "QuotaExceeded")  # 1 x 0.5 rounds up to 1
        assert "gpus 2 in use + 1 asked > limit 2" in err.message
        _refused(lambda: alice.patch("/services/half", {"replicas": 5}), 403, "QuotaExceeded")  # ceil(2.5) = 3
        admin.request("PUT", "/quotas/alice", json={"max_gpus": 3, "max_replicas": 20})
        alice.post("/services", {"name": "one", "instance_type": "gpu.half", "replicas": 1, **APP})
        assert alice.get("/quotas/alice")["used_gpus"] == 3  # per service: ceil(4 x 0.5) + ceil(1 x 0.5)


def _types(billing: Billing) -> None:
    with billing.store.begin() as conn:
        for name, gpus, fraction in (("g.one", 1, 0.0), ("g.half", 0, 0.5)):
            conn.execute(insert(instance_types).values(name=name, cpus=1.0, memory_mb=512, gpus=gpus,
                                                       gpu_fraction=fraction, gpu_model="", price_per_hour=1.0,
                                                       billing="payg", description=""))


def test_the_autoscaler_counts_a_canary_at_its_own_type(billing: Billing) -> None:
    _types(billing)
    settings = BillingSettings(enforce=False)
    sid = billing.service("auto", 1, instance_type="t.one")  # 1 stable (no GPU) + 1 canary of g.one
    with billing.store.begin() as conn:
        conn.execute(services.update().where(services.c.id == sid).values(
            canary_spec={**service_store.get(conn, "auto").spec, "instance_type": "g.one"}, canary_weight=99))
        accounts.set_limits(conn, billing.user_id, {"max_gpus": 2}, 0.0)
    with billing.store.begin() as conn:
        svc = service_store.get(conn, "auto")
        assert accounts.desired_use(conn, billing.user_id) == (2, 1)
        guard.admit_scale(conn, settings, svc, 2)  # 2 + 2 canary GPUs: fits
        with pytest.raises(guard.QuotaExceeded) as e:
            guard.admit_scale(conn, settings, svc, 3)  # 3 canary GPUs > 2
        assert e.value.details["quota"] == "gpus"


def test_the_autoscaler_needs_a_balance_for_a_priced_canary(billing: Billing) -> None:
    _types(billing)
    with billing.store.begin() as conn:
        conn.execute(insert(instance_types).values(name="t.free", cpus=1.0, memory_mb=512, gpus=0, gpu_model="",
                                                   price_per_hour=0.0, billing="payg", description=""))
    sid = billing.service("auto", 1, instance_type="t.free")
    with billing.store.begin() as conn:
        conn.execute(services.update().where(services.c.id == sid).values(
            canary_spec={**service_store.get(conn, "auto").spec, "instance_type": "t.one"}, canary_weight=50))
    with billing.store.begin() as conn, pytest.raises(InsufficientBalance):
        guard.admit_scale(conn, BillingSettings(enforce=True), service_store.get(conn, "auto"), 3)


def test_gpu_shares_are_rounded_up_per_service_part(billing: Billing) -> None:
    _types(billing)
    billing.service("a", 3, instance_type="g.half")  # ceil(1.5) = 2
    sid = billing.service("b", 1, instance_type="t.one")
    with billing.store.begin() as conn:
        conn.execute(services.update().where(services.c.id == sid).values(
            canary_spec={**service_store.get(conn, "b").spec, "instance_type": "g.half"}, canary_weight=10))
    with billing.store.read() as conn:  # a: 3 replicas, 2 GPUs; b: 1 + 1 canary replica, ceil(0.5) = 1 GPU
        assert accounts.desired_use(conn, billing.user_id) == (5, 3)


def test_admit_canary_counts_a_stable_scale_up_at_the_stable_type(billing: Billing) -> None:
    """The exact check for a canary started together with a scale-up (for api/canary.py; ``admit`` there gets
    only the total and sizes it at the canary's type)."""
    _types(billing)
    billing.service("g", 1, instance_type="g.one")
    with billing.store.begin() as conn:
        accounts.set_limits(conn, billing.user_id, {"max_gpus": 1}, 0.0)
        svc = service_store.get(conn, "g")
        cpu = {**svc.spec, "instance_type": "t.one"}
        guard.admit_canary(conn, BillingSettings(), svc, cpu, 1, 10)  # 1 GPU + 1 canary without: fits
        with pytest.raises(guard.QuotaExceeded):
            guard.admit_canary(conn, BillingSettings(), svc, cpu, 5, 10)  # 5 stable GPUs
