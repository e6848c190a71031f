"""What the admin and users do through REST: users, passwords, access keys, instance types, OpenAPI."""

from __future__ import annotations

import httpx
import pytest

from arkserve.auth.signing import decode_secret
from arkserve.sdk.client import ApiError
from tests.api.conftest import LiveApi


def _raises(code: str, status: int, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message


def test_admin_manages_users(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        made = admin.post("/users", {"username": "eve", "password": "eve-password", "role": "user"})
        assert made["username"] == "eve" and made["role"] == "user"
        _raises("UserExists", 409, lambda: admin.post("/users", {"username": "eve", "password": "eve-password"}))
        assert admin.patch("/users/eve", {"role": "admin"})["role"] == "admin"
        assert admin.patch("/users/eve", {"disabled": True})["disabled"] is True
        assert {u["username"] for u in admin.get("/users")} == {"admin", "eve"}
        admin.delete("/users/eve")
        _raises("UserNotFound", 404, lambda: admin.get("/users/eve"))
        _raises("SelfDelete", 409, lambda: admin.delete("/users/admin"))
        _raises("LastAdmin", 409, lambda: admin.patch("/users/admin", {"role": "user"}))
        _raises("ValidationFailed", 422,
                lambda: admin.post("/users", {"username": "shorty", "password": "short"}))
        for reserved in ("ark-pull-token", "ark-public"):  # platform credentials and namespaces
            with pytest.raises(ApiError) as e:
                admin.post("/users", {"username": reserved, "password": "a-long-password"})
            assert (e.value.status, e.value.code) == (422, "ValidationFailed") and "reserved" in e.value.message


def test_an_admin_cannot_disable_or_demote_themselves(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "ivy", "password": "ivy-password-1", "role": "admin"})
        key = admin.post("/keys", {"username": "ivy"})
    with live_api.client(key["access_key"], key["secret_key"]) as ivy:  # another admin exists: not LastAdmin
        _raises("SelfDisable", 409, lambda: ivy.patch("/users/ivy", {"disabled": True}))
        _raises("SelfDemote", 409, lambda: ivy.patch("/users/ivy", {"role": "user", "disabled": False}))
        me = ivy.get("/users/ivy")
        assert (me["role"], me["disabled"]) == ("admin", False)  # nothing of the refused change was applied
        assert ivy.patch("/users/ivy", {"password": "ivy-password-2"})["username"] == "ivy"  # the rest is allowed
    with live_api.client() as admin:  # another admin can do both
        done = admin.patch("/users/ivy", {"role": "user", "disabled": True})
        assert (done["role"], done["disabled"]) == ("user", True)
        admin.delete("/users/ivy")


def test_user_changes_own_password(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "fay", "password": "fay-password-1"})
        key = admin.post("/keys", {"username": "fay"})
    with live_api.client(key["access_key"], key["secret_key"]) as fay:
        _raises("WrongPassword", 401, lambda: fay.post("/me/password", {"current_password": "nope-nope",
                                                                        "new_password": "fay-password-2"}))
        fay.post("/me/password", {"current_password": "fay-password-1", "new_password": "fay-password-2"})
    login = httpx.post(f"{live_api.url}/api/v1/session", json={"username": "fay", "password": "fay-password-2"})
    assert login.status_code == 200
    old = httpx.post(f"{live_api.url}/api/v1/session", json={"username": "fay", "password": "fay-password-1"})
    assert old.status_code == 401 and old.json()["code"] == "LoginFailed"  # the old password no longer works


def test_access_key_lifecycle(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        created = [admin.post("/keys", {"description": f"k{i}"}) for i in range(4)]  # + the bootstrap key = 5
        _raises("KeyLimitExceeded", 409, lambda: admin.post("/keys", {}))
        for k in created:
            assert len(decode_secret(k["secret_key"])) == 32
            assert k["secret_key"] not in str(admin.get(f"/keys/{k['access_key']}"))
        listed = admin.get("/keys")
        assert len(listed) == 5 and all(set(k["secret_key_masked"]) == {"*"} for k in listed)
        ak = created[0]["access_key"]
        _raises("WrongPassword", 401, lambda: admin.post(f"/keys/{ak}/reveal", {"password": "not-it"}))
        shown = admin.post(f"/keys/{ak}/reveal", {"password": live_api.admin_password})
        assert shown["secret_key"] == created[0]["secret_key"]
        assert admin.patch(f"/keys/{ak}", {"enabled": False})["enabled"] is False
        admin.delete(f"/keys/{ak}")
        _raises("KeyNotFound", 404, lambda: admin.get(f"/keys/{ak}"))
        admin.post("/keys", {})  # room again after a delete
    with live_api.client(created[1]["access_key"], created[1]["secret_key"]) as again:
        assert again.get("/whoami")["access_key"] == created[1]["access_key"]


def test_instance_types_seeded_and_admin_managed(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        names = [t["name"] for t in admin.get("/instance-types")]
        assert {"cpu.small", "cpu.medium", "cpu.large"} <= set(names)
        admin.post("/instance-types", {"name": "cpu.tiny", "cpus": 0.5, "memory_mb": 512, "billing": "reserved"})
        _raises("InstanceTypeExists", 409,
                lambda: admin.post("/instance-types", {"name": "cpu.tiny", "cpus": 1, "memory_mb": 1}))
        _raises("ValidationFailed", 422,
                lambda: admin.post("/instance-types", {"name": "cpu.x", "cpus": -1, "memory_mb": 1}))
        admin.delete("/instance-types/cpu.tiny")
        _raises("InstanceTypeNotFound", 404, lambda: admin.delete("/instance-types/cpu.tiny"))


def test_openapi_document_and_docs_page(live_api: LiveApi) -> None:
    doc = httpx.get(f"{live_api.url}/api/v1/openapi.json").json()
    for path in ("/api/v1/keys", "/api/v1/users", "/api/v1/session", "/api/v1/keys/{access_key}/reveal"):
        assert path in doc["paths"]
    assert httpx.get(f"{live_api.url}/api/v1/docs").status_code == 200


def test_last_used_is_recorded_for_signed_calls(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        assert admin.get(f"/keys/{live_api.admin_ak}")["last_used_at"] is not None  # this very call used it
        fresh = admin.post("/keys", {"description": "unused"})
        assert admin.get(f"/keys/{fresh['access_key']}")["last_used_at"] is None
