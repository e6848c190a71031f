"""The PostgreSQL password stays out of messages, out of `ps`, and `backup` says which store `up` uses (hostile review
rev4-pg, findings 4 and 7a): the redaction kept libpq's `?password=`, `up --detach` re-executed itself with
`--database-url` in its argv for its whole life, and `backup` of a PostgreSQL `up`'s data dir said "no store"."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from arkserve.cli.server import _without_database_url, store_label
from tests import pg
from tests.cli.test_daemon import _alive, _run

SECRET = "S3cretPGpw"


@pytest.mark.parametrize(("url", "shown"), [
    (f"postgresql://postgres:{SECRET}@127.0.0.1:5532/arkold", "127.0.0.1:5532/arkold"),
    (f"postgresql://postgres@127.0.0.1:5532/arkold?password={SECRET}", "127.0.0.1:5532/arkold"),
    (f"postgresql:///nodb?host=127.0.0.1&port=5532&user=postgres&password={SECRET}", "127.0.0.1:5532/nodb"),
    (f"postgres://u:{SECRET}@db.example/ark?sslmode=require", "db.example/ark"),
    (f"postgresql+psycopg://u:{SECRET}@[::1]:5432/ark", "[::1]:5432/ark"),
    ("sqlite:////var/lib/arkserve/arkserve.db", "/var/lib/arkserve/arkserve.db"),
    (f"not a url {SECRET}", "an unreadable store URL"),
])
def test_store_label_shows_where_the_store_is_and_never_the_password(url: str, shown: str) -> None:
    assert store_label(url) == shown


def test_the_detached_ups_arguments_lose_the_database_url() -> None:
    args = ["--data-dir", "/d", "--database-url", f"postgresql://u:{SECRET}@h/d", "--plain-http",
            f"--database-url=postgresql://u:{SECRET}@h/d", "--api-port", "1"]
    assert _without_database_url(args) == ["--data-dir", "/d", "--plain-http", "--api-port", "1"]



def test_a_detached_up_on_postgresql_keeps_the_password_out_of_ps_and_backup_names_the_store(
        env: dict[str, str], tmp_path: Path, postgres_admin_url: str) -> None:
    data = tmp_path / "data"
    db = pg.fresh_database(postgres_admin_url)  # trust authentication: any password is accepted
    url = db.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@") + f"?password={SECRET}"
    started = _run(env, "up", "--detach", "--database-url", url)
    assert started.returncode == 0, started.stdout + started.stderr
    assert SECRET not in started.stdout + started.stderr and "(store: 127.0.0.1:" in started.stdout
    run_text = (data / "run" / "up.json").read_text()
    run = json.loads(run_text)
    assert run["store"] == "postgresql" and SECRET not in run_text
    cmdline = Path(f"/proc/{run['pid']}/cmdline").read_bytes()  # what every local user sees in `ps`
    assert b"up" in cmdline and SECRET.encode() not in cmdline and b"--database-url" not in cmdline
    assert SECRET not in (data / "logs" / "up.log").read_text()
    # an arkserve.db left from when this data dir ran on SQLite is not "the store"
    sqlite3.connect(data / "arkserve.db").execute("CREATE TABLE old (x)").connection.close()
    no_url = _run(env, "backup", str(tmp_path / "bk"))
    assert no_url.returncode == 1, no_url.stdout + no_url.stderr
    assert "this data dir's arkserve up uses PostgreSQL: pass --database-url or ARKSERVE_DATABASE_URL" \
        in no_url.stderr
    assert not (tmp_path / "bk").exists()  # no empty DEST left behind
    with_url = _run({**env, "ARKSERVE_DATABASE_URL": url}, "backup", str(tmp_path / "bk"))
    assert with_url.returncode == 0, with_url.stdout + with_url.stderr
    assert "pg_dump" in with_url.stdout and (tmp_path / "bk" / "master.key").exists()
    assert not (tmp_path / "bk" / "arkserve.db").exists()
    stopped = _run(env, "down")
    assert stopped.returncode == 0 and not _alive(run["pid"]), stopped.stdout + stopped.stderr
