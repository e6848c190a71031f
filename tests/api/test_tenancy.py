"""Service names are one platform-wide namespace: creating a taken name says only that it is taken; every other
call on another user's service answers exactly as for a missing one."""

from __future__ import annotations

import pytest

from arkserve.sdk.client import ApiError
from tests.api.conftest import LiveApi

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 0}


def test_a_taken_name_reveals_nothing_but_being_taken(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        for name in ("alice", "bob"):
            admin.post("/users", {"username": name, "password": f"{name}-password"})
        keys = {name: admin.post("/keys", {"username": name}) for name in ("alice", "bob")}
    with live_api.client(keys["alice"]["access_key"], keys["alice"]["secret_key"]) as alice:
        alice.post("/services", {"name": "secret-project", **SPEC})
    with live_api.client(keys["bob"]["access_key"], keys["bob"]["secret_key"]) as bob:
        with pytest.raises(ApiError) as taken:
            bob.post("/services", {"name": "secret-project", **SPEC})
        assert (taken.value.status, taken.value.code) == (409, "ServiceExists")
        assert "alice" not in taken.value.message and "taken" in taken.value.message
        seen = []
        for call in (lambda: bob.get("/services/secret-project"), lambda: bob.get("/services/no-such"),
                     lambda: bob.patch("/services/secret-project", {"replicas": 1}),
                     lambda: bob.delete("/services/secret-project")):
            with pytest.raises(ApiError) as e:
                call()
            seen.append((e.value.status, e.value.code, e.value.message.replace("no-such", "secret-project")))
        assert len(set(seen)) == 1 and seen[0][:2] == (404, "ServiceNotFound"), seen
