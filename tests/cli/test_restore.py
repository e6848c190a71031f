"""`arkserve restore` and the clean stop's checkpoint (hostile review rev4-pg, finding 1): a backup copied over a data
dir that still held the store's write-ahead log was not restored (SQLite replayed the old log onto it). Real `up`
processes, as `test_daemon.py` runs them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from tests.cli.test_daemon import _alive, _run


def _ok(env: dict[str, str], *args: str) -> str:
    done = _run(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _dump(db: Path) -> list[str]:
    """Every row of the store as SQL, read the way the next `up` reads it (a log beside it replayed)."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _users(env: dict[str, str]) -> set[str]:
    return {u["username"] for u in json.loads(_ok(env, "user", "list", "-o", "json"))}


def test_restore_after_a_crash_gives_back_the_backups_state_exactly(env: dict[str, str], tmp_path: Path) -> None:
    data, bk = tmp_path / "data", tmp_path / "bk"
    _ok(env, "up", "--detach")
    run = json.loads((data / "run" / "up.json").read_text())
    assert run["store"] == "sqlite"
    _ok(env, "user", "create", "before", "--password", "pw-1234567890")
    _ok(env, "backup", str(bk))
    _ok(env, "user", "create", "after", "--password", "pw-1234567890")  # changes after the backup
    _ok(env, "user", "delete", "before", "--yes")
    refused = _run(env, "restore", str(bk))  # not while `up` runs
    assert refused.returncode == 1 and "already running" in refused.stderr, refused.stdout + refused.stderr
    assert _users(env) >= {"after"} and "before" not in _users(env)
    for pid in [run["pid"], *run["parts"].values()]:  # a crash: the usual reason to restore
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in [run["pid"], *run["parts"].values()]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (data / "arkserve.db-wal").exists()  # the crash left the log: what a restore by hand replays
    (data / "master.key").write_bytes(b"\0" * 32)  # a file the restore must put back too
    done = _run(env, "restore", str(bk))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "arkserve.db-wal" in done.stdout and "master.key" in done.stdout
    assert not (data / "arkserve.db-wal").exists() and not (data / "run" / "up.json").exists()
    assert _dump(data / "arkserve.db") == _dump(bk / "arkserve.db")  # the backup's state, exactly
    assert (data / "master.key").read_bytes() == (bk / "master.key").read_bytes()
    assert (data / "master.key").stat().st_mode & 0o777 == 0o600
    _ok(env, "up", "--detach")  # and it runs: the admin's key (sealed by the restored master key) works
    users = _users(env)
    assert "before" in users and "after" not in users
    _ok(env, "down")


def test_a_clean_down_leaves_no_write_ahead_log(env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    _ok(env, "up", "--detach")
    _ok(env, "user", "create", "someone", "--password", "pw-1234567890")
    assert (data / "arkserve.db-wal").exists()
    _ok(env, "down")
    assert not (data / "arkserve.db-wal").exists() and not (data / "arkserve.db-shm").exists()
    # so copying a backup in by hand, as the docs once said, restores it: the store holds every row itself
    assert any("someone" in line for line in _dump(data / "arkserve.db"))


def test_restore_refuses_what_is_not_a_backup_and_restores_only_the_files_beside_postgresql(
        env: dict[str, str], tmp_path: Path) -> None:
    data, bk = tmp_path / "data", tmp_path / "bk"
    _ok(env, "init")
    _ok(env, "backup", str(bk))
    before = _dump(data / "arkserve.db")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    for src, why in ((other, "not a backup made by `arkserve backup`"), (data / "logs", "not a backup")):
        src.mkdir(exist_ok=True)
        refused = _run(env, "restore", str(src))
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
    (other / "arkserve.db").write_text("not a store")
    refused = _run(env, "restore", str(other))
    assert refused.returncode == 1 and "is not an arkserve SQLite store" in refused.stderr, refused.stderr
    assert _dump(data / "arkserve.db") == before
    # a PostgreSQL store: the files only, and the URL's password is not shown
    fresh = {**env, "ARKSERVE_DATA_DIR": str(tmp_path / "pgdata")}
    url = "postgresql://postgres:S3cretPGpw@127.0.0.1:1/ark?password=S3cretPGpw"
    done = _run(fresh, "restore", str(bk), "--database-url", url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pg_restore" in done.stdout and "127.0.0.1:1/ark" in done.stdout and "S3cret" not in done.stdout
    assert not (tmp_path / "pgdata" / "arkserve.db").exists()
    assert (tmp_path / "pgdata" / "master.key").read_bytes() == (bk / "master.key").read_bytes()
    assert (tmp_path / "pgdata" / "tls").is_dir() == (bk / "tls").is_dir()
