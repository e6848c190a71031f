"""A multi-machine layout on one box: `arkserve init`, then api, gateway and reconciler as separate processes
on a shared PostgreSQL. The gateway keeps serving from its last snapshot while the API and the store are down."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import Client
from arkserve.sdk.profiles import load_all
from tests import pg
from tests.e2e.conftest import APP
from tests.live import free_port, gateway_port_base
from tests.required import unavailable


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, pg.PgServer]]:
    """A PostgreSQL server of this test's own, so the test may stop and start it."""
    if pg.find_bin() is None:
        unavailable("ARKSERVE_REQUIRE_POSTGRES", pg.NOT_INSTALLED)
    with pg.postgres_server() as server:
        yield pg.fresh_database(server.url), server


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "arkserve", *args], env=env, stdout=fh, stderr=subprocess.STDOUT)


def test_parts_alone_on_postgres_and_the_gateway_outlives_api_and_store(tmp_path: Path,
                                                                        own_postgres: tuple[str, pg.PgServer]) -> None:
    url, server = own_postgres
    data = tmp_path / "data"
    api_port, admin_port, port_base = free_port(), free_port(), gateway_port_base()
    env = {**os.environ, "ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml"), "ARKSERVE_DATABASE_URL": url,
           "ARKSERVE_DATA_DIR": str(data), "ARKSERVE_API_PORT": str(api_port),
           "ARKSERVE_GATEWAY_ADMIN_PORT": str(admin_port), "ARKSERVE_GATEWAY_PORT_BASE": str(port_base),
           "ARKSERVE_GATEWAY_WORKERS": "2"}
    env.pop("ARKSERVE_MASTER_KEY", None)
    init = subprocess.run([sys.executable, "-m", "arkserve", "init"], env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    env["ARKSERVE_MASTER_KEY"] = (data / "master.key").read_text().strip()
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(APP, app / "app.py")
    procs = {name: _spawn([name], env, tmp_path / f"{name}.log") for name in ("api", "gateway", "reconciler")}
    try:
        profile = load_all(tmp_path / "profiles.yaml")["default"]
        client = Client(profile.endpoint, profile.access_key, profile.secret_key)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/whoami")
                break
            except Exception:
                assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
                time.sleep(0.2)
        client.post("/services", {"name": "pgsvc", "image": str(app), "port": 8000, "replicas": 2,
                                  "command": f"{sys.executable} app.py", "health_path": "/healthz"})
        deadline = time.monotonic() + 60
        while client.get("/services/pgsvc")["ready"] < 2:
            assert time.monotonic() < deadline, (tmp_path / "reconciler.log").read_text()
            time.sleep(0.2)
        endpoint = client.get("/services/pgsvc")["endpoint"]
        client.close()
        auth = ArkAuth(profile.access_key, profile.secret_key)
        http = httpx.Client(verify=ssl.create_default_context(cafile=str(data / "tls" / "ca.pem")), auth=auth)

        def served() -> set[str]:
            seen = set()
            for _ in range(20):
                resp = http.get(endpoint + "/")
                assert resp.status_code == 200, resp.text
                seen.add(resp.json()["replica"])
            return seen

        assert len(served()) == 2
        procs["api"].send_signal(signal.SIGTERM)
        procs["api"].wait(20)
        assert len(served()) == 2  # control plane down: the data plane goes on
        gateway_log = tmp_path / "gateway.log"

        def failed_polls() -> int:
            return gateway_log.read_text(errors="replace").count("routing snapshot source failed")

        before = failed_polls()
        server.stop()
        deadline = time.monotonic() + 20
        while failed_polls() < before + 2:  # each of the 2 workers (polling alone) logs its first failed poll
            assert time.monotonic() < deadline, gateway_log.read_text()[-3000:]
            time.sleep(0.2)
        assert len(served()) == 2  # store down too: still serving from the last snapshot
        assert procs["gateway"].poll() is None and procs["reconciler"].poll() is None
        http.close()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        from arkserve.runtimes.local import LocalRuntime

        rt = LocalRuntime(data)
        for info in rt.list():
            rt.stop(info.service, info.replica, 1)
