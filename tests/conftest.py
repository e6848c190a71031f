"""Fixtures shared by the whole suite: real SQLite and PostgreSQL stores, a live API on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arkserve.store.db import Store, open_store
from tests import pg
from tests.required import unavailable


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    if pg.find_bin() is None:
        unavailable("ARKSERVE_REQUIRE_POSTGRES", pg.NOT_INSTALLED)
    with pg.postgres_server() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh, empty database of each kind; tests using it run once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/arkserve.db"
    admin = request.getfixturevalue("postgres_admin_url")
    return pg.fresh_database(admin)


@pytest.fixture
def api_database_url() -> str:
    """The store of a live API (tests/api/conftest.py): empty, the default SQLite in its data dir. The API
    suite overrides this to run on SQLite and PostgreSQL both; suites reusing its fixtures stay on SQLite."""
    return ""


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store on a fresh database (each backend in turn)."""
    s = open_store(database_url)
    yield s
    s.dispose()
