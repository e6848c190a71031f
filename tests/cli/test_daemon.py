"""Running arkserve for real: `up --detach`, `status`, `down`, and `backup` of a running store, restored."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from arkserve.auth import keys as key_service
from arkserve.auth.vault import load_master_key
from arkserve.store import users as user_store
from arkserve.store.db import open_store
from arkserve.store.routing import load_snapshot
from tests.live import free_port, gateway_port_base


def _env(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "ARKSERVE_DATA_DIR": str(tmp / "data"), "ARKSERVE_API_PORT": str(free_port()),
           "ARKSERVE_GATEWAY_ADMIN_PORT": str(free_port()), "ARKSERVE_GATEWAY_PORT_BASE": str(gateway_port_base()),
           "ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml"), "ARKSERVE_GATEWAY_WORKERS": "1"}
    env.pop("ARKSERVE_MASTER_KEY", None)
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arkserve", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False



def test_up_detach_status_and_down(env: dict[str, str], tmp_path: Path) -> None:
    assert _run(env, "status").returncode == 3
    started = _run(env, "up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "arkserve is up." in started.stdout and "arkserve down" in started.stdout
    assert "Press Ctrl-C" not in started.stdout
    again = _run(env, "up", "--detach")
    assert again.returncode == 1 and "already running" in again.stderr
    status = _run(env, "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    parts = {p["part"]: p for p in info["parts"]}
    assert info["running"] is True and set(parts) >= {"api", "gateway", "reconciler"}
    assert parts["api"]["health"] == "ready" and parts["gateway"]["health"] == "ok"
    assert all(_alive(p["pid"]) for p in parts.values()) and _alive(info["pid"])
    table = _run(env, "status").stdout
    assert "arkserve is running" in table and "reconciler" in table
    stopped = _run(env, "down")
    assert stopped.returncode == 0 and "stopped." in stopped.stdout, stopped.stderr
    assert not _alive(info["pid"]) and not any(_alive(p["pid"]) for p in parts.values())
    assert _run(env, "status").returncode == 3
    log = (tmp_path / "data" / "logs" / "up.log").read_text()
    assert "the gateway drains in-flight requests" in log and "arkserve: stopped." in log
    assert "nothing to stop" not in _run(env, "down").stdout  # a second down is harmless
    assert _run(env, "down").returncode == 0


def test_backup_while_writing_restores_a_consistent_store(env: dict[str, str], tmp_path: Path) -> None:
    assert _run(env, "init").returncode == 0
    data = tmp_path / "data"
    store = open_store(f"sqlite:///{data}/arkserve.db")
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:  # a busy platform: users and their keys keep arriving during the backup
        i = 0
        master = load_master_key(data, None, create=False)
        while not stop.is_set():
            with store.begin() as conn:
                uid = user_store.create(conn, f"u{i}", "h", "user").id
                key_service.issue(conn, master, uid, "")
            written.append(f"u{i}")
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while len(written) < 20:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        done = _run(env, "backup", str(tmp_path / "bk"))
        before_end = len(written)
    finally:
        stop.set()
        t.join(30)
        store.dispose()
    assert done.returncode == 0, done.stderr
    assert "master.key" in done.stdout and (tmp_path / "bk" / "master.key").stat().st_mode & 0o777 == 0o600
    # restore: a fresh data dir from the backup
    restored = tmp_path / "restored"
    restored.mkdir()
    for item in (tmp_path / "bk").iterdir():
        if item.is_file():
            (restored / item.name).write_bytes(item.read_bytes())
    with sqlite3.connect(restored / "arkserve.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = open_store(f"sqlite:///{restored}/arkserve.db")  # migrations run on the restored store
    try:
        with again.read() as conn:
            names = {u.username for u in user_store.list_all(conn)}
            snap = load_snapshot(conn, load_master_key(restored, None, create=False))  # SKs unseal
        assert "admin" in names and len(snap.keys) == len(names)  # every user's key, and the admin's
        got = [n for n in written if n in names]
        assert 20 <= len(got) <= before_end and got == written[:len(got)]  # a prefix: one moment in time
    finally:
        again.dispose()
