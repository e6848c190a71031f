"""Server commands: ``arkserve up`` (everything on one host) and each part alone (``arkserve api`` …)."""

from __future__ import annotations

import fcntl
import getpass
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import httpx

from arkserve import settings as settings_mod
from arkserve.cli.output import fail
from arkserve.errors import ArkserveError
from arkserve.ports import port_free
from arkserve.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def store_options(fn: F) -> F:
    fn = click.option("--database-url", default=None, help="Store URL (default: SQLite in the data dir).")(fn)
    fn = click.option("--data-dir", default=None, help="Data directory (default ~/.arkserve).")(fn)
    return fn


def store_label(url: str) -> str:
    """Where the store is, for messages: the SQLite file, or PostgreSQL's ``host:port/database``; never the user,
    the password or the query (libpq's ``?password=`` included: hostile review rev4-pg, finding 4)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        return "an unreadable store URL"
    if u.get_backend_name() == "sqlite":
        return u.database or ":memory:"

    def query(name: str) -> str:
        value = u.query.get(name) or ""
        return str(value[-1] if isinstance(value, tuple) else value)

    host, port = u.host or query("host") or "localhost", u.port or query("port")
    host = f"[{host}]" if ":" in host else host
    return f"{host}{f':{port}' if port else ''}/{u.database or ''}"


def store_kind(url: str) -> str:
    """``sqlite`` or ``postgresql``, as ``up`` records it in its run file (never the URL)."""
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _settings(**flags: Any) -> Settings:
    try:
        return settings_mod.load(flags)
    except ArkserveError as exc:
        fail(exc.message)
        raise


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command("api", help="Run the REST API (and console) alone, against --database-url.")
@store_options
@click.option("--host", default=None, help="Listen address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default 7780).")
def api(data_dir: str | None, database_url: str | None, host: str | None, port: int | None) -> None:
    from arkserve.api import server as api_server
    from arkserve.api.app import create_app
    from arkserve.auth.vault import load_master_key
    from arkserve.store.db import open_store

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url, "api.host": host, "api.port": port})
    _logging(s.log_level)
    try:
        master = load_master_key(s.data_dir, os.environ.get("ARKSERVE_MASTER_KEY"), create=False)
        store = open_store(s.database_url, busy_timeout_ms=s.store.busy_timeout_ms)
    except ArkserveError as exc:
        fail(exc.message)
        raise
    import uvicorn

    config = api_server.config(create_app(s, store, master), s)  # configures uvicorn's loggers
    _route_access_log(s)
    uvicorn.Server(config).run()


def _route_access_log(s: Settings) -> None:
    """uvicorn's access lines (one per request: every console poll) go to a rotated file under the data dir,
    keeping the terminal for what a person must see; ``api.access_log=terminal`` leaves them on stdout."""
    from logging.handlers import RotatingFileHandler

    if s.api.access_log == "terminal":
        return
    access = logging.getLogger("uvicorn.access")
    path = s.data_dir / "logs" / "api-access.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=20 * 1024 * 1024, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    for old in list(access.handlers):
        access.removeHandler(old)
    access.addHandler(handler)
    access.propagate = False


def _wait_healthy(url: str, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _banner(s: Settings, boot: Any) -> str:
    lines = ["", "arkserve is up.", "",
             f"  Console      {s.api_url}/   (log in as admin)",
             f"  REST API     {s.api_url}/api/v1   (OpenAPI: {s.api_url}/api/v1/openapi.json, "
             f"docs: {s.api_url}/api/v1/docs)",
             f"  Data dir     {s.data_dir}   (store: {store_label(s.database_url)})", "",
             f"  Admin        user 'admin', password in {s.data_dir / 'admin-password'}"]
    if boot.admin_password:
        lines.append(f"               password: {boot.admin_password}")
    lines.append(f"  Access key   AK {boot.access_key}")
    if boot.first_start:
        lines.append(f"               SK {boot.secret_key}")
        lines.append("               (the SK is shown on first start only; `arkserve key reveal` shows it again)")
    g = s.gateway
    scheme = "https" if g.tls else "http"
    where = (f"{scheme}://127.0.0.1:{g.port_base}+ (one port per service)" if g.addressing == "port"
             else f"{scheme}://<service>.{g.base_domain}:{g.host_port}")
    lines += [f"  Gateway      {where}; metrics on http://127.0.0.1:{g.admin_port}/metrics"]
    if g.tls and not g.tls_cert:
        lines += [f"  TLS CA       {s.data_dir / 'tls' / 'ca.pem'}   (clients: REQUESTS_CA_BUNDLE=<that file>)"]
    from arkserve.registry.process import missing_binary

    if s.runtime.kind == "docker" and s.registry.enabled and not missing_binary(s):
        lines += [f"  Registry     {s.registry_address}   (docker login {s.registry_address} -u <user>; "
                  "`arkserve image push-commands`)"]
    lines += [f"  CLI profile  {boot.profile_path}  ->  try `arkserve whoami`, `arkserve key list`", ""]
    if s.runtime.kind == "local":
        from arkserve.runtimes.sandbox import unavailable

        who = (f"as {s.runtime.replica_user}" if os.geteuid() == 0 else f"as this OS user ({getpass.getuser()})")
        lines.append(f"  Runtime      local processes, each in a bubblewrap sandbox {who} (docs/security.md)"
                     if not unavailable() else
                     "  Runtime      local processes, NOT sandboxed: only admins' services run (see the warning)")
    lines += ["", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


@click.command("init", help="Prepare a store and data dir (migrations, admin, first key, CLI profile) without "
                            "starting anything: the first step of a multi-machine deployment.")
@store_options
def init(data_dir: str | None, database_url: str | None) -> None:
    from arkserve.bootstrap import prepare

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url})
    try:
        boot = prepare(s)
    except ArkserveError as exc:
        fail(exc.message)
        raise
    boot.store.dispose()
    click.echo(f"store ready: {store_label(s.database_url)}")
    if boot.admin_password:
        click.echo(f"admin password: {boot.admin_password}   (also in {s.data_dir / 'admin-password'})")
        click.echo(f"access key: {boot.access_key}   secret key: {boot.secret_key}")
    click.echo(f"CLI profile: {boot.profile_path}")
    click.echo("Every part needs the same ARKSERVE_MASTER_KEY (or a copy of "
               f"{s.data_dir / 'master.key'}) and --database-url.")


def _ports_free(s: Settings) -> None:
    """Fail before starting anything when a fixed port is taken (another ``arkserve up``, most likely):
    otherwise ``up`` would find *that* API healthy while its own API child crash-loops."""
    fixed = [("API", s.api.host, s.api.port, "--api-port")]
    if s.gateway.admin_port >= 0:
        fixed.append(("gateway admin", "127.0.0.1", s.gateway.admin_port, "ARKSERVE_GATEWAY_ADMIN_PORT"))
    if s.gateway.addressing == "host":
        fixed.append(("gateway", s.gateway.host, s.gateway.host_port, "ARKSERVE_GATEWAY_HOST_PORT"))
    for what, host, port, knob in fixed:
        if not port_free(host, port):
            fail(f"the {what} port {host}:{port} is not free; is another arkserve running? Stop it, or pick "
                 f"another port with {knob}.")


_HELD: list[int] = []  # the data dir's lock, held (open) for the life of ``up``


def _hold_data_dir(s: Settings) -> None:
    """One ``arkserve up`` per data dir: an ``flock`` on ``<data dir>/run/up.lock``, which the kernel lets go of
    however ``up`` ends. A second ``up`` on other ports would otherwise share the store and the runtime: its
    reconciler adopted the first one's replicas and stopped them when it ended (hostile review, 2026-12-03)."""
    lock = s.data_dir / "run" / "up.lock"
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        fail(f"cannot use the data dir {s.data_dir}: {exc.strerror or exc}")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        fail(f"arkserve is already running for {s.data_dir}: see `arkserve status`, stop it with `arkserve down`")
    _HELD.append(fd)


def _registry_part(s: Settings) -> list[Any]:
    """The image registry as one more part on the Docker runtime; without its binary, a note and no images."""
    from arkserve.registry.process import missing_binary
    from arkserve.registry.tokens import ensure_signing_key
    from arkserve.supervisor import Child

    if s.runtime.kind != "docker" or not s.registry.enabled:
        return []
    problem = missing_binary(s)
    if problem:
        click.echo(f"arkserve: {problem}")
        return []
    if not port_free(s.registry.host, s.registry.port):  # the registry is optional: say so and run without it
        click.echo(f"arkserve: the registry port {s.registry.host}:{s.registry.port} is not free (another arkserve?): "
                   "images are off; pick another port with ARKSERVE_REGISTRY_PORT.")
        return []
    ensure_signing_key(s.data_dir)  # before the parts start, so none of them races another to create it
    return [Child("registry", ["registry"])]


def _without_database_url(args: list[str]) -> list[str]:
    """``up``'s arguments less ``--database-url VALUE`` / ``--database-url=VALUE``: the detached ``up`` lives on,
    and its argv (with any password in the URL) is readable by every local user in ``ps``."""
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--database-url":
            skip = True
        elif not arg.startswith("--database-url="):
            kept.append(arg)
    return kept


def _checkpoint(s: Settings) -> None:
    """After every part has stopped: fold SQLite's write-ahead log into the store, so that a clean stop leaves no
    ``arkserve.db-wal`` (a restore copied in by hand would otherwise get the old log replayed onto it)."""
    import sqlite3

    if not s.database_url.startswith("sqlite:///"):
        return
    path = s.database_url.removeprefix("sqlite:///")
    if not os.path.exists(path):
        return
    try:
        db = sqlite3.connect(path, timeout=5)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            db.close()  # the last connection: SQLite removes -wal and -shm
    except sqlite3.Error as exc:
        click.echo(f"arkserve: could not checkpoint the store {path}: {exc}", err=True)


def _sandbox_warning(s: Settings) -> None:
    """Once at start: where the local runtime cannot sandbox, only admins' services run (unconfined)."""
    from arkserve.runtimes.sandbox import unavailable

    reason = unavailable() if s.runtime.kind == "local" else ""
    if reason:
        click.echo(f"arkserve: WARNING: replicas cannot be sandboxed: {reason}. Services of non-admin users are "
                   "refused (SandboxUnavailable); admins' services run unconfined, as this user.", err=True)


@click.command("up", help="Start store, API, gateway and reconciler on this host (embedded defaults).")
@store_options
@click.option("--api-port", type=int, default=None, help="API/console port (default 7780).")
@click.option("--runtime", "runtime_kind", type=click.Choice(["local", "docker"]), default=None,
              help="Where replicas run (default local processes).")
@click.option("--gateway-port-base", type=int, default=None, help="First per-service gateway port (default 20001).")
@click.option("--plain-http", is_flag=True, default=None, help="Gateway without TLS.")
@click.option("--keep-replicas", is_flag=True, default=False,
              help="On exit, leave the services' replicas running (the next start adopts them).")
@click.option("--detach", is_flag=True, default=False,
              help="Run in the background (output in <data dir>/logs/up.log); `arkserve status`, `arkserve down`.")
@click.option("--access-log", "access_log", is_flag=True, default=False,
              help="Show the API's access log (a line per request) here too; by default it goes to "
                   "<data dir>/logs/api-access.log.")
def up(data_dir: str | None, database_url: str | None, api_port: int | None, runtime_kind: str | None,
       gateway_port_base: int | None, plain_http: bool | None, keep_replicas: bool, access_log: bool,
       detach: bool) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from arkserve.bootstrap import prepare
    from arkserve.supervisor import Child, Supervisor, run_file
    from arkserve.tls import ensure_local_ca

    s = _settings(data_dir=data_dir, **{"store.database_url": database_url, "api.port": api_port,
                                        "runtime.kind": runtime_kind, "gateway.port_base": gateway_port_base,
                                        "gateway.tls": False if plain_http else None,
                                        "runtime.stop_replicas_on_exit": not keep_replicas,
                                        "api.access_log": "terminal" if access_log else None})
    if detach:
        from arkserve.cli.daemon import detach as run_detached

        args = sys.argv[sys.argv.index("up") + 1:] if "up" in sys.argv else []
        run_detached(s, _without_database_url([a for a in args if a != "--detach"]))  # the URL goes by env
        return
    _ports_free(s)  # first: it leaves nothing behind (a data dir's lock would make the folder)
    _hold_data_dir(s)
    try:
        boot = prepare(s)
        if s.gateway.tls and not s.gateway.tls_cert:
            ensure_local_ca(s.data_dir, s.gateway.base_domain)
    except ArkserveError as exc:
        fail(exc.message)
        raise
    except SQLAlchemyError as exc:  # the store is away at start: what every part says of it, not a traceback
        fail(f"the store is unavailable ({store_label(s.database_url)}): "
             f"{str(getattr(exc, 'orig', None) or exc).strip()}")
        raise
    except OSError as exc:
        fail(f"cannot use the data dir {s.data_dir}: {exc.strerror or exc}"
             f"{f' ({exc.filename})' if exc.filename else ''}")
        raise
    boot.store.dispose()
    env = {**os.environ, **settings_mod.to_env(s), "ARKSERVE_DATA_DIR": str(s.data_dir)}
    grace = s.gateway.shutdown_grace_s
    sup = Supervisor([Child("api", ["api"]), Child("gateway", ["gateway"], stop_timeout_s=grace + 10),
                      Child("reconciler", ["reconciler"], stop_timeout_s=60, forceable=False),
                      Child("dispatcher", ["dispatcher"], stop_timeout_s=20), *_registry_part(s)],
                     env, state_file=run_file(s.data_dir),
                     state_extra={"api_url": s.api_url, "gateway_admin_port": s.gateway.admin_port,
                                  "store": store_kind(s.database_url)})
    sup.install_signals()
    sup.start()
    try:
        if not _wait_healthy(s.api_url):
            fail(f"the API did not come up on {s.api_url}; see the messages above")
        click.echo(_banner(s, boot))
        _sandbox_warning(s)
        sup.watch()
    finally:
        click.echo(f"arkserve: stopping: the gateway drains in-flight requests (up to {grace:g} s; Ctrl-C again "
                   "to cut it short), then the reconciler, then the API…")
        sup.stop()
        _checkpoint(s)
        click.echo("arkserve: stopped.")
