"""A key change holds at the gateway the moment its API call returns: a new key is accepted at once, a disabled
or deleted one refused at once (the API waits for every gateway worker to load the change)."""

from __future__ import annotations

import ssl

import httpx

from arkserve.sdk.auth import ArkAuth
from tests.e2e.conftest import Platform


def test_key_changes_hold_at_the_gateway_when_the_call_returns(platform: Platform) -> None:
    endpoint = platform.create("keyed")["endpoint"]
    with platform.client() as c, httpx.Client(verify=ssl.create_default_context(cafile=platform.ca), timeout=30) as web:
        for _ in range(8):
            key = c.post("/keys", {"description": "fresh"})
            resp = web.get(endpoint + "/", auth=ArkAuth(key["access_key"], key["secret_key"]))
            assert resp.status_code == 200, resp.text  # not 401 InvalidCredential for a moment
            c.patch(f"/keys/{key['access_key']}", {"enabled": False})
            resp = web.get(endpoint + "/", auth=ArkAuth(key["access_key"], key["secret_key"]))
            assert resp.status_code == 401, resp.text
            c.patch(f"/keys/{key['access_key']}", {"enabled": True})
            assert web.get(endpoint + "/", auth=ArkAuth(key["access_key"], key["secret_key"])).status_code == 200
            c.delete(f"/keys/{key['access_key']}")
            assert web.get(endpoint + "/", auth=ArkAuth(key["access_key"], key["secret_key"])).status_code == 401
