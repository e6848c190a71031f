"""A store at a schema revision this arkserve does not know (a newer arkserve migrated it: a rollback after an
upgrade) is refused with one clear error, :class:`StoreSchemaNewer`, before anything reads or writes it; and
``arkserve init``, ``up`` and the parts say it in one line, not alembic's 30-line traceback ("Can't locate
revision"). On real stores: the store's ``alembic_version`` is set to a revision after this build's head."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from arkserve.errors import StoreSchemaNewer
from arkserve.store.db import open_store, script_head
from tests.live import free_port, gateway_port_base

FUTURE = "9999"


def _expected() -> str:
    return (f"the store is at schema {FUTURE}, newer than this arkserve (head {script_head()}): upgrade arkserve, "
            "or restore the backup taken before the upgrade")


def _set_revision(url: str, revision: str) -> None:
    store = open_store(url)  # migrated to this build's head first
    try:
        with store.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        store.dispose()


def _revision(url: str) -> list[str]:
    store = open_store(url, migrate_schema=False)
    try:
        with store.read() as conn:
            return [str(r) for r in conn.execute(text("SELECT version_num FROM alembic_version")).scalars()]
    finally:
        store.dispose()


def test_a_store_newer_than_this_arkserve_is_refused_with_one_clear_error(database_url: str) -> None:
    assert script_head() not in (None, FUTURE)
    _set_revision(database_url, FUTURE)
    with pytest.raises(StoreSchemaNewer) as refused:
        open_store(database_url)
    assert refused.value.message == _expected()
    assert _revision(database_url) == [FUTURE]  # left as it was


def test_init_up_and_the_parts_say_it_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "ARKSERVE_DATA_DIR": str(tmp_path / "data"), "ARKSERVE_API_PORT": str(free_port()),
           "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port()), "ARKSERVE_GATEWAY_PORT_BASE": str(gateway_port_base()),
           "ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml"), "ARKSERVE_GATEWAY_WORKERS": "1"}
    for name in ("ARKSERVE_MASTER_KEY", "ARKSERVE_DATABASE_URL"):
        env.pop(name, None)

    def arkserve(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "arkserve", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    first = arkserve("init")
    assert first.returncode == 0, first.stdout + first.stderr
    url = f"sqlite:///{tmp_path / 'data' / 'arkserve.db'}"
    _set_revision(url, FUTURE)
    for command in (["init"], ["up", "--plain-http"], ["api"], ["reconciler"]):
        done = arkserve(*command)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stderr == f"Error: {_expected()}\n", (command, done.stderr)
    assert _revision(url) == [FUTURE]
