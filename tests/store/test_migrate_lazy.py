"""A store already at the newest migration opens without importing alembic (which would cost every serving
process ~10 MB); a store behind it is migrated as before, and a migration file that does not name its
revisions plainly leaves the decision to alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from arkserve.store import db

OPEN = """
import sys
from arkserve.store.db import open_store, version
store = open_store(sys.argv[1])
with store.read() as conn:
    version(conn)
print("alembic" in sys.modules)
"""


def _opens_with_alembic(url: str) -> bool:
    out = subprocess.run([sys.executable, "-c", OPEN, url], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_alembic_is_imported_only_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ark.db'}"
    assert _opens_with_alembic(url)  # a new store: migrated
    assert not _opens_with_alembic(url)  # at the head: alembic stays out of the process


def test_the_head_is_read_from_the_files_or_left_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert db.script_head() == sorted(p.name[:4] for p in (db.MIGRATIONS / "versions").glob("0*.py"))[-1]
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_a.py").write_text("revision = '0001'\ndown_revision = None\n")
    (versions / "0002_b.py").write_text("revision: str = '0002'\ndown_revision: str | None = '0001'\n")
    monkeypatch.setattr(db, "MIGRATIONS", tmp_path)
    assert db.script_head() == "0002"
    (versions / "0003_merge.py").write_text("revision = '0003'\ndown_revision = ('0001', '0002')\n")
    assert db.script_head() is None  # a merge: not read here
