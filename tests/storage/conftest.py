"""A live API on loopback with two users (alice, bob), each with an httpx client signed by their own key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi, live_api  # noqa: F401  (the fixture, re-exported)


@dataclass
class DiskUser:
    name: str
    password: str
    ak: str
    sk: str
    http: httpx.Client  # base URL: <api>/api/v1/disk
    root: Path  # <data_dir>/disks/<name>


@dataclass
class DiskEnv:
    api: LiveApi
    alice: DiskUser
    bob: DiskUser

    def set_quota(self, user: str, limit: int | None) -> None:
        with self.api.client() as admin:
            admin.request("PUT", f"/disk/quota/{user}", json={"limit_bytes": limit})


def _user(api: LiveApi, name: str) -> DiskUser:
    password = f"{name}-pass-123"
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": password, "role": "user"})
        key = admin.post("/keys", {"username": name, "description": "disk tests"})
    http = httpx.Client(base_url=f"{api.url}/api/v1/disk", auth=ArkAuth(key["access_key"], key["secret_key"]),
                        timeout=30)
    return DiskUser(name, password, key["access_key"], key["secret_key"], http, api.data_dir / "disks" / name)


@pytest.fixture
def disk_env(live_api: LiveApi) -> Iterator[DiskEnv]:  # noqa: F811
    env = DiskEnv(live_api, _user(live_api, "alice"), _user(live_api, "bob"))
    yield env
    env.alice.http.close()
    env.bob.http.close()
