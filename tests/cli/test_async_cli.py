"""``arkserve async``: ``secret -o json|yaml`` prints the API's body like every command that shows data (the
default still prints the secret alone), and ``get --result`` on a request that has not finished says so and
points at ``--wait``. Against a live API on loopback; the request rows are written into its real store, as the
gateway's intake and the dispatcher write them (queued, then claimed: running, then finished)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.domain.async_requests import new_id
from arkserve.store import async_requests as queue_store
from arkserve.store import users as user_store
from arkserve.store.db import open_store
from tests.api.conftest import LiveApi, running_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with running_api(tmp_path_factory.mktemp("api")) as live:
        yield live


def _ark(api: LiveApi, *args: str) -> tuple[int, str, str]:
    env = {"ARKSERVE_ENDPOINT": api.url, "ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk,
           "ARKSERVE_CLI_CONFIG": os.devnull}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_secret_takes_output_formats_and_prints_the_bare_secret_by_default(api: LiveApi) -> None:
    with api.client() as c:
        body = c.get("/webhook-secret")
    code, out, err = _ark(api, "async", "secret")
    assert code == 0 and out == body["secret"] + "\n", err
    code, out, err = _ark(api, "async", "secret", "-o", "json")
    assert code == 0 and json.loads(out) == body, err
    assert body["algorithm"] == "HMAC-SHA256" and body["signature_header"] == "X-Ark-Webhook-Signature"
    code, out, err = _ark(api, "async", "secret", "--output", "yaml")
    assert code == 0 and yaml.safe_load(out) == body, err


def test_result_of_an_unfinished_request_hints_at_wait(api: LiveApi) -> None:
    store = open_store(api.database_url, migrate_schema=False)
    rid = new_id()
    try:
        with store.begin() as conn:
            admin = user_store.find(conn, "admin")
            assert admin is not None
            queue_store.insert_request(conn, {"id": rid, "service": "echo", "user_id": admin.id, "method": "POST",
                                              "path": "/", "headers": [], "created_at": time.time()})
        code, out, err = _ark(api, "async", "get", rid, "--result")
        assert (code, out) == (1, ""), err
        assert f"{rid} is queued, its result is not there yet: add --wait S to wait up to S seconds" in err
        with store.begin() as conn:
            assert [r["id"] for r in queue_store.claim(conn, "test", time.time(), 300, 10)] == [rid]
        code, out, err = _ark(api, "async", "get", rid, "--result")
        assert code == 1 and "is running, its result is not there yet: add --wait S" in err, err
        code, out, err = _ark(api, "async", "get", rid, "--result", "--wait", "0.2")
        assert code == 1 and f"{rid} is still running after 0.2 s: a longer --wait S waits for it" in err, err
        with store.begin() as conn:
            assert queue_store.finish(conn, rid, "test", now=time.time(), status="succeeded", retention_s=60,
                                      result_status=200, result_headers=[], result_body=b"done", result_size=4)
        code, out, err = _ark(api, "async", "get", rid, "--result")
        assert (code, out) == (0, "done\n"), err
    finally:
        store.dispose()
