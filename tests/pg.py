"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir, on 127.0.0.1.

initdb refuses to run as root, so as root the server runs as the ``postgres`` OS user
(Debian's package creates it). ``ARKSERVE_REQUIRE_POSTGRES=1`` (set by .ci/run) turns a
missing server into a failure instead of a skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.live import free_port

NOT_INSTALLED = "PostgreSQL server not installed (apt-get install postgresql)"


def find_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass(frozen=True)
class PgServer:
    url: str  # admin URL: postgresql://postgres@127.0.0.1:PORT/postgres
    data: Path
    bindir: Path

    def stop(self) -> None:
        subprocess.run(_as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
                       check=True, capture_output=True)


@contextmanager
def postgres_server() -> Iterator[PgServer]:
    """A running server; stopped and removed on exit."""
    bindir = find_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="arkserve-pg-"))
    data = tmp / "data"
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                 "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={tmp} -c fsync=off"
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "log"),
                                 "-w", "-t", "60", "start"]), check=True, capture_output=True)
    try:
        yield PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", data, bindir)
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


THROWAWAY = "throwaway"  # the benchmarks' ``--postgres`` with no URL


@contextmanager
def admin_url_for(choice: str | None) -> Iterator[str | None]:
    """A benchmark's ``--postgres [URL]`` as an admin URL: None for no PostgreSQL (SQLite), a server started for
    the run for :data:`THROWAWAY`, else the URL given."""
    if choice != THROWAWAY:
        yield choice
        return
    with postgres_server() as server:
        yield server.url


def fresh_database(admin_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(port)
