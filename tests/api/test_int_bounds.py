"""Integers past what the store's columns hold are a 422 with the API's JSON error body, on SQLite and on
PostgreSQL, never a 500 from the database driver (SQLite: OverflowError; PostgreSQL: integer out of range);
the largest value that fits is still taken."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from arkserve.schemas import MAX_INT32, MAX_INT64
from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi

TOO_LARGE: list[tuple[str, str, Any, str]] = [  # method, path, body, the field the 422 names
    ("PUT", "/images/quota/admin", {"quota_bytes": MAX_INT64 + 1}, "quota_bytes"),
    ("PUT", "/images/quota/admin", {"quota_bytes": 10**20}, "quota_bytes"),
    ("PUT", "/disk/quota/admin", {"limit_bytes": MAX_INT64 + 1}, "limit_bytes"),
    ("POST", "/disk/uploads", {"path": "big.bin", "size": 10**20}, "size"),
    ("POST", "/instance-types", {"name": "huge", "cpus": 1, "memory_mb": 10**20}, "memory_mb"),
    ("POST", "/instance-types", {"name": "huge", "cpus": 1, "memory_mb": MAX_INT32 + 1}, "memory_mb"),
    ("PATCH", f"/billing/prepaid/{MAX_INT32 + 1}", {"auto_renew": True}, "prepaid_id"),  # an Integer column
    ("PATCH", f"/billing/prepaid/{MAX_INT64 + 1}", {"auto_renew": True}, "prepaid_id"),
    ("PATCH", f"/billing/prepaid/{-MAX_INT64 - 2}", {"auto_renew": True}, "prepaid_id"),
    ("PATCH", "/billing/prepaid/0", {"auto_renew": True}, "prepaid_id"),
    ("PATCH", "/billing/prepaid/99999999999999999999", {"auto_renew": True}, "prepaid_id"),
]


def _admin(live_api: LiveApi) -> httpx.Client:
    return httpx.Client(base_url=live_api.url + "/api/v1", auth=ArkAuth(live_api.admin_ak, live_api.admin_sk),
                        timeout=30)


@pytest.mark.parametrize(("method", "path", "body", "field"), TOO_LARGE)
def test_an_integer_past_the_stores_columns_is_a_422(live_api: LiveApi, method: str, path: str, body: Any,
                                                      field: str) -> None:
    with _admin(live_api) as admin:
        r = admin.request(method, path, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()
    assert err["code"] == "ValidationFailed" and err["request_id"] and field in err["message"], err


def test_the_largest_integers_that_fit_are_taken(live_api: LiveApi) -> None:
    with _admin(live_api) as admin:
        quota = admin.put("/images/quota/admin", json={"quota_bytes": MAX_INT64})
        assert quota.status_code == 200 and quota.json()["quota_bytes"] == MAX_INT64, quota.text
        disk = admin.put("/disk/quota/admin", json={"limit_bytes": MAX_INT64})
        assert disk.status_code == 200 and disk.json()["limit"] == MAX_INT64, disk.text
        itype = admin.post("/instance-types", json={"name": "huge", "cpus": 1, "memory_mb": MAX_INT32})
        assert itype.status_code == 201 and itype.json()["memory_mb"] == MAX_INT32, itype.text
        missing = admin.patch(f"/billing/prepaid/{MAX_INT32}", json={"auto_renew": True})
        assert missing.status_code == 404 and missing.json()["code"] == "PrepaidNotFound", missing.text
