"""A store that holds every pooled connection (a table locked on PostgreSQL, a slow server) answers the requests
that cannot get a connection with a JSON ``503 StoreUnavailable`` and ``Retry-After`` after the pool's timeout,
not a 500 with a traceback each; and the API serves again as soon as the lock goes. On a real PostgreSQL, with a
small pool (2 connections, 0.5 s) so that it is quick."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from arkserve.sdk.auth import ArkAuth
from arkserve.store.db import open_store
from tests import pg
from tests.live import gateway_port_base, serve

REQUESTS = 8
POOL = 2


def test_a_full_pool_is_a_503_store_unavailable_and_the_api_recovers(
        tmp_path: Path, postgres_admin_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = pg.fresh_database(postgres_admin_url)
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "store.database_url": url,
                           "gateway.port_base": gateway_port_base()}, env=env)
    boot = prepare(s, env=env)
    boot.store.dispose()
    small = open_store(url, migrate_schema=False, pool_size=POOL, max_overflow=0, pool_timeout_s=0.5)
    auth = ArkAuth(boot.access_key, boot.secret_key)
    answers: list[httpx.Response] = []
    came = threading.Condition()

    def one(api: str) -> None:
        r = httpx.get(f"{api}/api/v1/services", auth=auth, timeout=60)
        with came:
            answers.append(r)
            came.notify_all()

    try:
        with serve(create_app(s, small, boot.master), settings=s) as api:
            assert httpx.get(f"{api}/api/v1/services", auth=auth).status_code == 200
            with psycopg.connect(url) as locker:  # a transaction: the lock holds until the rollback
                locker.execute("LOCK TABLE services IN ACCESS EXCLUSIVE MODE")
                caplog.clear()
                with caplog.at_level(logging.WARNING):
                    threads = [threading.Thread(target=one, args=(api,)) for _ in range(REQUESTS)]
                    for t in threads:
                        t.start()
                    with came:  # at most POOL requests get a connection (and wait on the lock): the rest are refused
                        assert came.wait_for(lambda: len(answers) >= REQUESTS - POOL, timeout=30), answers
                        refused = list(answers)
                    for r in refused:
                        assert r.status_code == 503, r.text
                        body = r.json()
                        assert body["code"] == "StoreUnavailable" and body["request_id"], body
                        assert body["message"] == f"store unavailable: all {POOL} connections busy", body
                        assert r.headers["retry-after"] == "1"
                    locker.rollback()
                    for t in threads:
                        t.join(30)
                assert not [t for t in threads if t.is_alive()]
            # those that waited on the lock were served once it went; none was a 500
            assert sorted({r.status_code for r in answers}) in ([503], [200, 503]), [r.text for r in answers]
            started = time.monotonic()
            again = httpx.get(f"{api}/api/v1/services", auth=auth)
            assert again.status_code == 200 and time.monotonic() - started < 5, again.text
        ours = [r for r in caplog.records if r.name.startswith("arkserve")]
        assert ours and not [r for r in ours if r.exc_info], [r.getMessage() for r in ours]  # no traceback
    finally:
        small.dispose()
