"""The canary through REST (on SQLite and PostgreSQL): start with a PATCH, re-weight, replace, the refusals with
their codes, promote and rollback writing the spec and the events, and another user's service looking missing."""

from __future__ import annotations

import pytest

from arkserve.sdk.client import ApiError
from tests.api.conftest import LiveApi

SPEC = {"name": "birds", "image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 4,
        "env": {"VERSION": "1"}}


def _raises(status: int, code: str, call) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value


def test_canary_start_reweight_replace_promote_and_rollback(live_api: LiveApi) -> None:
    with live_api.client() as c:
        made = c.post("/services", SPEC)
        stable = made["revision"]
        assert made["canary"] is None
        _raises(409, "NoCanary", lambda: c.post("/services/birds/canary/promote", {}))
        _raises(409, "NoCanary", lambda: c.post("/services/birds/canary/rollback", {}))
        err = _raises(422, "ValidationFailed", lambda: c.patch("/services/birds", {"canary": 10}))
        assert "changes" in err.message
        _raises(422, "ValidationFailed", lambda: c.patch("/services/birds", {"auth": False, "canary": 10}))
        _raises(422, "ValidationFailed", lambda: c.patch("/services/birds", {"env": {"VERSION": "2"}, "canary": 100}))

        svc = c.patch("/services/birds", {"env": {"VERSION": "2"}, "canary": 10})
        can = svc["canary"]
        assert svc["revision"] == stable and svc["spec"]["env"] == {"VERSION": "1"}  # the stable spec stays
        assert can["weight"] == 10 and can["replicas"] == 1 and can["spec"]["env"] == {"VERSION": "2"}
        assert can["revision"] != stable and svc["generation"] == made["generation"]
        err = _raises(409, "CanaryActive", lambda: c.patch("/services/birds", {"env": {"VERSION": "9"}}))
        assert "promote" in err.message and "rollback" in err.message

        svc = c.patch("/services/birds", {"canary": 50})  # re-weight: 4 replicas at 50 % -> 2
        assert svc["canary"]["revision"] == can["revision"] and svc["canary"]["replicas"] == 2
        svc = c.patch("/services/birds", {"env": {"VERSION": "3"}, "canary": 25})  # replace
        assert svc["canary"]["spec"]["env"] == {"VERSION": "3"} and svc["canary"]["revision"] != can["revision"]
        assert c.patch("/services/birds", {"replicas": 8})["canary"]["replicas"] == 2  # follows the stable count

        svc = c.post("/services/birds/canary/rollback", {})
        assert svc["canary"] is None and svc["revision"] == stable and svc["spec"]["env"] == {"VERSION": "1"}

        c.patch("/services/birds", {"env": {"VERSION": "4"}, "canary": 10})
        svc = c.post("/services/birds/canary/promote", {})
        assert svc["canary"] is None and svc["spec"]["env"] == {"VERSION": "4"} and svc["revision"] != stable
        assert svc["generation"] == made["generation"] + 1
        events = [(e["kind"], e["message"]) for e in c.get("/services/birds/events")]
    kinds = [k for k, _ in events]
    assert kinds.count("canary") == 4 and "rolled_back" in kinds and "promoted" in kinds
    assert any("split of canary" in m and "50/50" in m for k, m in events if k == "canary")


def test_a_change_in_place_while_a_canary_runs_survives_its_promotion(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", SPEC)
        c.patch("/services/birds", {"env": {"VERSION": "2"}, "canary": 10})
        svc = c.patch("/services/birds", {"health_path": "/ready", "auth": False})  # no new revision: in place
        assert svc["spec"]["health_path"] == "/ready" and svc["canary"]["spec"]["health_path"] == "/ready"
        svc = c.post("/services/birds/canary/promote", {})
    assert svc["spec"]["env"] == {"VERSION": "2"}  # the canary's revision
    assert svc["spec"]["health_path"] == "/ready" and svc["spec"]["auth"] is False  # and the change made meanwhile


def test_another_users_canary_looks_missing(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "eve", "password": "eve-password"})
        key = admin.post("/keys", {"username": "eve"})
        admin.post("/services", SPEC)
        admin.patch("/services/birds", {"env": {"VERSION": "2"}, "canary": 10})
    with live_api.client(key["access_key"], key["secret_key"]) as eve:
        _raises(404, "ServiceNotFound", lambda: eve.post("/services/birds/canary/promote", {}))
        _raises(404, "ServiceNotFound", lambda: eve.post("/services/birds/canary/rollback", {}))
        _raises(404, "ServiceNotFound", lambda: eve.patch("/services/birds", {"canary": 90}))


def test_the_openapi_lists_the_canary_endpoints(live_api: LiveApi) -> None:
    with live_api.client() as c:
        doc = c.get("/openapi.json")
    assert "/api/v1/services/{name}/canary/promote" in doc["paths"]
    assert "/api/v1/services/{name}/canary/rollback" in doc["paths"]
    assert "CanaryOut" in doc["components"]["schemas"]
