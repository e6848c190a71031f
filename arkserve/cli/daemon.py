"""Running ``arkserve up`` for real: ``up --detach``, ``arkserve status``, ``arkserve down``, ``arkserve backup``.

``up`` keeps ``<data_dir>/run/up.json`` (its pid and each part's pid, see :mod:`arkserve.supervisor`).
``status`` reads it and asks each part how it is; ``down`` sends ``up`` the SIGTERM a Ctrl-C would (the same
ordered, draining stop) and waits for it to end; ``up --detach`` starts ``up`` in a session of its own with
its output in ``<data_dir>/logs/up.log`` and returns once it is up. ``backup`` copies what a restore needs
(a consistent SQLite snapshot taken with SQLite's online backup, safe while everything runs; the master key;
the local CA; the config file) into a new directory; see docs/operations.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx

from arkserve.cli.output import fail, output_option, render
from arkserve.cli.server import _settings, store_options
from arkserve.errors import ArkserveError
from arkserve.logs import DEFAULT_MAX_BYTES, rotate
from arkserve.registry import backup as registry_backup
from arkserve.settings import Settings
from arkserve.supervisor import run_file

NOT_RUNNING = 3  # `status` exit code when arkserve is not running (like `systemctl status`)


def up_log(data_dir: Path) -> Path:
    return data_dir / "logs" / "up.log"


def _alive_up(pid: int) -> bool:
    """True while ``pid`` is a live ``arkserve up`` (not a reused pid, not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and b"up" in cmdline and any(b"arkserve" in part for part in cmdline)


def recorded_store(data_dir: Path) -> str | None:
    """``sqlite`` or ``postgresql``: the store the last ``up`` of this data dir recorded in its run file (also one
    left by an ``up`` that was killed); None when there is no run file or it does not say."""
    try:
        run = json.loads(run_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    kind = run.get("store") if isinstance(run, dict) else None
    return kind if isinstance(kind, str) else None


def read_run(data_dir: Path) -> dict[str, Any] | None:
    """The run file of a live ``up``; None when none runs (a stale file, after a SIGKILL, counts as none)."""
    try:
        run = json.loads(run_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    return run if isinstance(run, dict) and _alive_up(int(run.get("pid", 0))) else None


def open_up_log(data_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """``up.log``, ready for a new ``up --detach``: past ``max_bytes`` the old one becomes ``up.log.1`` (the one
    before that goes), so restarts do not grow it without end."""
    log = up_log(data_dir)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        if log.exists() and log.stat().st_size > max_bytes:
            rotate(log)
    except OSError as exc:
        fail(f"cannot use the data dir {data_dir}: {exc.strerror or exc}")
    return log


def detach(s: Settings, argv: list[str], timeout_s: float = 120.0) -> None:
    """Start ``arkserve up ARGV`` (without --detach) in the background and return once it is up.

    The store's URL goes to it as ``ARKSERVE_DATABASE_URL`` (ARGV holds no ``--database-url``): its password would
    otherwise stay in ``/proc/PID/cmdline``, which every local user can read, for the life of the service."""
    if read_run(s.data_dir) is not None:
        fail(f"arkserve is already running for {s.data_dir}; see `arkserve status`")
    log = open_up_log(s.data_dir)
    start = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "arkserve", "up", *argv], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1",
                                     **({"ARKSERVE_DATABASE_URL": s.store.database_url}
                                        if s.store.database_url else {})})
    deadline = time.monotonic() + timeout_s
    while True:
        with open(log, "rb") as fh:
            fh.seek(start)
            text = fh.read().decode("utf-8", "replace")
        if "Press Ctrl-C to stop." in text:
            banner = text[text.find("arkserve is up."):]
            click.echo(banner.replace("Press Ctrl-C to stop.", "Stop it with `arkserve down`; "
                                      f"`arkserve status` says how it is. Log: {log}"))
            click.echo(f"arkserve up runs in the background (pid {proc.pid}).")
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
            fail(f"arkserve up did not come up; its output ({log}):\n{text[-3000:]}")
        time.sleep(0.2)


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        resp = httpx.get(url, timeout=2.0)
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        return resp.status_code, body
    except (httpx.HTTPError, ValueError):
        return 0, {}


def _where(s: Settings, run: dict[str, Any]) -> tuple[str, int]:
    """The API's URL and the gateway's admin port of the running ``up``, as it recorded them (it may have been
    given other ports than this shell's settings say); these settings for a run file without them."""
    return str(run.get("api_url") or s.api_url), int(run.get("gateway_admin_port", s.gateway.admin_port))


def _health(api_url: str, admin_port: int, part: str) -> str:
    if part == "api":
        live, _ = _get(f"{api_url}/api/v1/healthz")
        ready, body = _get(f"{api_url}/api/v1/readyz")
        if live != 200:
            return "not answering"
        return "ready" if ready == 200 else f"alive, not ready ({body.get('code', ready)})"
    if part == "gateway" and admin_port >= 0:
        code, body = _get(f"http://127.0.0.1:{admin_port}/healthz")
        return str(body.get("status", "not answering")) if code else "not answering"
    return "running"


@click.command("status", help="Whether `arkserve up` runs for this data dir: its parts, their pids and health. "
                              "Exit code 0 when it runs, 3 when it does not.")
@store_options
@output_option
def status(data_dir: str | None, database_url: str | None, fmt: str) -> None:
    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    run = read_run(s.data_dir)
    if run is None:
        if fmt == "table":
            click.echo(f"arkserve is not running (data dir {s.data_dir}).")
        else:
            render({"running": False, "data_dir": str(s.data_dir)}, fmt)
        raise SystemExit(NOT_RUNNING)
    api_url, admin_port = _where(s, run)
    parts = []
    for name, pid in sorted(run.get("parts", {}).items()):
        health = _health(api_url, admin_port, name) if Path(f"/proc/{pid}").exists() else "restarting"
        parts.append({"part": name, "pid": pid, "health": health})
    if fmt == "table":
        click.echo(f"arkserve is running (pid {run['pid']}, data dir {s.data_dir}, API {api_url}).")
        render(parts, fmt, ("part", "pid", "health"))
    else:
        render({"running": True, "pid": run["pid"], "data_dir": str(s.data_dir), "api_url": api_url,
                "parts": parts}, fmt)


@click.command("down", help="Stop `arkserve up` for this data dir the way Ctrl-C does: the gateway drains "
                            "in-flight requests first, then the reconciler and the API stop.")
@store_options
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for it to end.")
@click.option("--force", is_flag=True, help="Cut the gateway's drain short (a second Ctrl-C).")
def down(data_dir: str | None, database_url: str | None, timeout: float, force: bool) -> None:
    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    run = read_run(s.data_dir)
    if run is None:
        click.echo(f"arkserve is not running (data dir {s.data_dir}).")
        return
    pid = int(run["pid"])
    os.kill(pid, signal.SIGTERM)
    if force:
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
    click.echo(f"arkserve: stopping (pid {pid}); the gateway drains in-flight requests first…")
    deadline = time.monotonic() + timeout
    while _alive_up(pid):
        if time.monotonic() > deadline:
            fail(f"arkserve (pid {pid}) is still stopping after {timeout:g} s; `arkserve down --force` cuts the "
                 f"drain short. Its log: {up_log(s.data_dir)}")
        time.sleep(0.1)
    click.echo("arkserve: stopped.")


BACKUP_FILES = ("master.key", "admin-password", "config.yaml")


@click.command("backup", help="Copy what a restore needs into a new directory DEST, safely while arkserve runs: "
                              "a consistent snapshot of the SQLite store, the master key, the local CA, the config "
                              "file. PostgreSQL stores are backed up with pg_dump (docs/operations.md).")
@store_options
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
def backup(data_dir: str | None, database_url: str | None, dest: Path) -> None:
    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    if dest.exists() and any(dest.iterdir()):
        fail(f"{dest} is not empty; back up into a new directory")
    url = s.database_url
    if not s.store.database_url and recorded_store(s.data_dir) == "postgresql":  # not a stale arkserve.db
        fail(f"this data dir's arkserve up uses PostgreSQL: pass --database-url or ARKSERVE_DATABASE_URL (and "
             f"back the database up with pg_dump, docs/operations.md); {s.data_dir} was not backed up")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        fail(f"no store at {url.removeprefix('sqlite:///')}")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)  # it holds the master key
    try:
        _backup(s, dest)
    except BaseException:
        if created:  # no half backup left to be mistaken for one
            shutil.rmtree(dest, ignore_errors=True)
        raise


def _backup(s: Settings, dest: Path) -> None:
    url = s.database_url
    if url.startswith("sqlite:///"):
        source = Path(url.removeprefix("sqlite:///"))
        src = sqlite3.connect(source, timeout=30)
        dst = sqlite3.connect(dest / source.name)
        try:
            src.backup(dst)  # SQLite's online backup: one consistent snapshot, writers keep going
        finally:
            dst.close()
            src.close()
        click.echo(f"store      {dest / source.name}")
    else:
        click.echo("store      not copied: it is PostgreSQL; back it up with pg_dump (docs/operations.md)")
    for name in BACKUP_FILES:
        if (s.data_dir / name).exists():
            shutil.copy2(s.data_dir / name, dest / name)
            click.echo(f"{name:<10} {dest / name}")
    if (s.data_dir / "tls").is_dir():
        shutil.copytree(s.data_dir / "tls", dest / "tls")
        click.echo(f"{'tls':<10} {dest / 'tls'}")
    try:  # the platform registry's images (a service built from one fails ImageNotFound after a restore without)
        for name, path in registry_backup.copy(s.data_dir, dest):
            click.echo(f"{name:<10} {path}")
    except ArkserveError as exc:
        fail(exc.message)
    click.echo("Not copied (copy them with rsync if you need them): disks/, models/, logs/, replicas/.")
