"""Billing inputs a hostile review sent (2026-12-02), through the live API: prices the ledger cannot count, an
instance type deleted under its services, and statement months that are not YYYY-MM. Each answered with a
clear 4xx that changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi

TYPE = {"name": "odd", "cpus": 1, "memory_mb": 512}


def _admin(api: LiveApi) -> httpx.Client:
    return httpx.Client(base_url=f"{api.url}/api/v1", auth=ArkAuth(api.admin_ak, api.admin_sk))


@pytest.mark.parametrize("price", [1e300, float("inf"), float("nan"), 1_000_000.5])
def test_a_price_the_ledger_cannot_count_is_422(live_api: LiveApi, price: float) -> None:
    with _admin(live_api) as a:
        body = json.dumps({**TYPE, "price_per_hour": price})  # Python writes Infinity and NaN as JSON can't
        r = a.post("/instance-types", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["field"] == "price_per_hour", r.text
        assert "odd" not in [t["name"] for t in a.get("/instance-types").json()]
        assert a.post("/instance-types", json={**TYPE, "price_per_hour": 1_000_000}).status_code == 201


def test_an_instance_type_in_use_cannot_be_deleted(live_api: LiveApi) -> None:
    with _admin(live_api) as a:
        assert a.post("/instance-types", json=TYPE).status_code == 201
        svc = {"name": "user-of-odd", "image": "/usr/bin", "port": 8000, "command": "true", "replicas": 0,
               "instance_type": "odd"}
        assert a.post("/services", json=svc).status_code == 201
        r = a.delete("/instance-types/odd")
        assert r.status_code == 409 and r.json()["code"] == "InstanceTypeInUse", r.text
        assert "service user-of-odd" in r.json()["message"]
        assert "odd" in [t["name"] for t in a.get("/instance-types").json()]
        assert a.delete("/services/user-of-odd").status_code in (200, 202, 204)
        # the service row goes once the reconciler has removed it; here no reconciler runs: still in use
        assert a.delete("/instance-types/odd").status_code == 409


@pytest.mark.parametrize("month", ["9999-12", "2026-\r\n11", "\uff12\uff10\uff12\uff16-\uff11\uff11", "2026-1_1",
                                   "2026-13", "1969-12", " 2026-11", "2026-11\n"])
def test_a_statement_month_is_yyyy_mm_or_422(live_api: LiveApi, month: str) -> None:
    with _admin(live_api) as a:
        for fmt in ("json", "csv"):
            r = a.get("/billing/statement", params={"month": month, "format": fmt})
            assert r.status_code == 422 and r.json()["field"] == "month", (month, fmt, r.status_code, r.text)
        ok = a.get("/billing/statement", params={"month": "2026-11", "format": "csv"})
        assert ok.status_code == 200 and 'filename="statement-admin-2026-11.csv"' in ok.headers["content-disposition"]
