"""A live API on loopback over a freshly bootstrapped data dir (admin + first key); in this folder on each
store in turn (SQLite, then a real PostgreSQL from tests/pg.py), as production runs on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from arkserve.sdk.client import Client
from tests import pg
from tests.live import gateway_port_base, serve


@dataclass
class LiveApi:
    url: str
    admin_password: str
    admin_ak: str
    admin_sk: str
    data_dir: Path
    port_base: int  # the first per-service gateway port (a free block, so tests never meet a real arkserve)
    database_url: str  # the store it runs on

    def client(self, ak: str | None = None, sk: str | None = None) -> Client:
        return Client(self.url, ak or self.admin_ak, sk or self.admin_sk)


@pytest.fixture(params=["sqlite", "postgres"])
def api_database_url(request: pytest.FixtureRequest) -> str:
    """Overrides tests/conftest.py's (SQLite only) for the API suite: a fresh database of each kind."""
    if request.param == "sqlite":
        return ""
    return pg.fresh_database(request.getfixturevalue("postgres_admin_url"))


@contextmanager
def running_api(tmp_path: Path, **settings: object) -> Iterator[LiveApi]:
    """A bootstrapped API on loopback with these settings (dotted names) over the defaults."""
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    port_base = gateway_port_base()
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": port_base, **settings}, env=env)
    boot = prepare(s, env=env)
    assert boot.admin_password is not None
    try:
        with serve(create_app(s, boot.store, boot.master), settings=s) as url:  # as `arkserve api` runs it
            yield LiveApi(url, boot.admin_password, boot.access_key, boot.secret_key, s.data_dir, port_base,
                          s.database_url)
    finally:
        boot.store.dispose()


@pytest.fixture
def live_api(tmp_path: Path, api_database_url: str) -> Iterator[LiveApi]:
    with running_api(tmp_path, **{"store.database_url": api_database_url}) as api:
        yield api
