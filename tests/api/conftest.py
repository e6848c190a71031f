"""A live API on loopback over a freshly bootstrapped data dir (admin + first key)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from arkserve.sdk.client import Client
from tests.live import gateway_port_base, serve


@dataclass
class LiveApi:
    url: str
    admin_password: str
    admin_ak: str
    admin_sk: str
    data_dir: Path
    port_base: int  # the first per-service gateway port (a free block, so tests never meet a real arkserve)

    def client(self, ak: str | None = None, sk: str | None = None) -> Client:
        return Client(self.url, ak or self.admin_ak, sk or self.admin_sk)


@pytest.fixture
def live_api(tmp_path: Path) -> Iterator[LiveApi]:
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    port_base = gateway_port_base()
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": port_base}, env=env)
    boot = prepare(s, env=env)
    assert boot.admin_password is not None
    with serve(create_app(s, boot.store, boot.master)) as url:
        yield LiveApi(url, boot.admin_password, boot.access_key, boot.secret_key, s.data_dir, port_base)
    boot.store.dispose()
