"""Liveness and readiness: /api/v1/healthz answers while the process runs; /api/v1/readyz fails (503
StoreUnavailable) while the store is unreachable and recovers when it is back — tested on a real PostgreSQL
that is stopped and started again."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from tests import pg
from tests.live import gateway_port_base, serve
from tests.required import unavailable


def _start_again(server: pg.PgServer) -> None:
    port = server.url.rsplit(":", 1)[1].split("/", 1)[0]
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={server.data.parent} " \
           "-c fsync=off"
    subprocess.run(pg._as_postgres([str(server.bindir / "pg_ctl"), "-D", str(server.data), "-o", opts, "-l",
                                    str(server.data.parent / "log"), "-w", "-t", "60", "start"]),
                   check=True, capture_output=True)


def test_readyz_follows_the_store_and_healthz_stays_a_liveness_check(tmp_path: Path) -> None:
    if pg.find_bin() is None:
        unavailable("ARKSERVE_REQUIRE_POSTGRES", pg.NOT_INSTALLED)
    with pg.postgres_server() as server:
        url = pg.fresh_database(server.url)
        env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
        s = settings_mod.load({"data_dir": str(tmp_path / "data"), "store.database_url": url,
                               "gateway.port_base": gateway_port_base()}, env=env)
        boot = prepare(s, env=env)
        try:
            with serve(create_app(s, boot.store, boot.master)) as api, httpx.Client(base_url=api) as http:
                ready = http.get("/api/v1/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "ready"
                server.stop()
                away = http.get("/api/v1/readyz")
                assert away.status_code == 503, away.text
                body = away.json()
                assert body["code"] == "StoreUnavailable" and body["request_id"] and "store" in body["message"]
                assert http.get("/api/v1/healthz").status_code == 200  # alive, just not ready
                _start_again(server)
                deadline = time.monotonic() + 30
                while (back := http.get("/api/v1/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, back.text
                    time.sleep(0.2)
                assert back.json()["status"] == "ready"
        finally:
            boot.store.dispose()
