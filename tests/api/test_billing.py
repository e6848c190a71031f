"""Billing through the real API (SQLite and PostgreSQL) and the CLI: 402 InsufficientBalance and 403
QuotaExceeded as JSON errors that leave nothing half-created, top-ups, prepaid purchases, statements and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.sdk.client import ApiError, Client
from tests.api.conftest import LiveApi, running_api

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 app.py", "instance_type": "cpu.small"}


@pytest.fixture
def billed_api(tmp_path: Path, api_database_url: str) -> Iterator[LiveApi]:
    with running_api(tmp_path, **{"store.database_url": api_database_url, "billing.enforce": True}) as api:
        yield api


def _user(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": f"{name}-password-1"})
        key = admin.post("/keys", {"username": name})
    return api.client(key["access_key"], key["secret_key"])


def _refused(call: object, status: int, code: str) -> ApiError:
    with pytest.raises(ApiError) as e:
        call()  # type: ignore[operator]
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    assert e.value.request_id
    return e.value


def test_balance_and_quota_refusals_leave_nothing_behind(billed_api: LiveApi) -> None:
    with _user(billed_api, "alice") as alice, billed_api.client() as admin:
        err = _refused(lambda: alice.post("/services", {"name": "web", "replicas": 1, **SPEC}),
                       402, "InsufficientBalance")
        assert "0.00 CNY" in err.message
        _refused(lambda: alice.get("/services/web"), 404, "ServiceNotFound")  # nothing was created
        alice.post("/services", {"name": "web", "replicas": 0, **SPEC})  # no replica, nothing to pay for
        _refused(lambda: alice.patch("/services/web", {"replicas": 1}), 402, "InsufficientBalance")
        assert admin.post("/billing/topup", {"username": "alice", "amount": 10})["balance"] == 10.0
        assert alice.patch("/services/web", {"replicas": 1})["replicas"] == 1
        admin.request("PUT", "/quotas/alice", json={"max_replicas": 2})
        err = _refused(lambda: alice.patch("/services/web", {"replicas": 3}), 403, "QuotaExceeded")
        assert "limit 2" in err.message
        assert alice.get("/services/web")["replicas"] == 1
        _refused(lambda: alice.post("/services", {"name": "api", "replicas": 2, **SPEC}), 403, "QuotaExceeded")
        _refused(lambda: alice.get("/services/api"), 404, "ServiceNotFound")
        assert alice.patch("/services/web", {"replicas": 0})["replicas"] == 0  # scaling down is never refused
        _refused(lambda: alice.post("/billing/topup", {"username": "alice", "amount": 5}), 403, "AccessDenied")
        paths = httpx.get(f"{billed_api.url}/api/v1/openapi.json").json()["paths"]
        assert {"/api/v1/billing/balance", "/api/v1/billing/topup", "/api/v1/billing/usage",
                "/api/v1/billing/statement", "/api/v1/billing/prepaid", "/api/v1/quotas/{username}"} <= set(paths)
        quota = alice.get("/quotas/alice")
        assert (quota["max_replicas"], quota["used_replicas"], quota["max_gpus"]) == (2, 0, None)


def test_a_canarys_replicas_count_against_the_replica_quota(billed_api: LiveApi) -> None:
    with _user(billed_api, "carol") as carol, billed_api.client() as admin:
        admin.post("/billing/topup", {"username": "carol", "amount": 10})
        admin.request("PUT", "/quotas/carol", json={"max_replicas": 4})
        carol.post("/services", {"name": "web", "replicas": 2, **SPEC})
        carol.patch("/services/web", {"env": {"V": "2"}, "canary": 50})  # 2 stable + 1 canary
        assert carol.get("/quotas/carol")["used_replicas"] == 3
        _refused(lambda: carol.post("/services", {"name": "api", "replicas": 2, **SPEC}), 403, "QuotaExceeded")
        _refused(lambda: carol.patch("/services/web", {"replicas": 3}), 403, "QuotaExceeded")  # 3 + 2 canary > 4
        carol.post("/services", {"name": "api", "replicas": 1, **SPEC})


def test_prepaid_purchase_statement_and_csv(billed_api: LiveApi) -> None:
    with _user(billed_api, "bob") as bob, billed_api.client() as admin:
        admin.post("/billing/topup", {"username": "bob", "amount": 20})
        err = _refused(lambda: bob.post("/billing/prepaid", {"instance_type": "cpu.small", "count": 1}),
                       402, "InsufficientBalance")
        assert "28.80 CNY" in err.message and "20.00 CNY" in err.message  # 0.05 x 720 h x 0.8
        assert bob.get("/billing/prepaid") == []
        admin.post("/billing/topup", {"username": "bob", "amount": 100})
        admin.request("PUT", "/quotas/bob", json={"max_prepaid": 1})
        row = bob.post("/billing/prepaid", {"instance_type": "cpu.small", "count": 1, "auto_renew": True})
        assert (row["count"], row["price"], row["status"], row["auto_renew"]) == (1, 28.8, "active", True)
        _refused(lambda: bob.post("/billing/prepaid", {"instance_type": "cpu.small"}), 403, "QuotaExceeded")
        assert bob.get("/billing/balance")["balance"] == 91.2
        assert bob.get("/billing/prepaid-free") == [{"instance_type": "cpu.small", "held": 1, "in_use": 0, "free": 1}]
        # with a free prepaid instance a replica needs no balance; the second one does (there is some)
        bob.post("/services", {"name": "bob-web", "replicas": 2, **SPEC})
        st = bob.get("/billing/statement")
        assert (st["prepaid"], st["topups"], st["closing_balance"]) == (28.8, 120.0, 91.2)
        assert admin.get("/billing/statement", user="bob")["closing_balance"] == 91.2
        _refused(lambda: bob.get("/billing/statement", user="admin"), 403, "AccessDenied")
        _refused(lambda: bob.get("/billing/statement", month="2026-13"), 422, "ValidationFailed")
        text = "".join(bob.stream_text("/billing/statement", format="csv"))
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:3] == ["month", "user", "service"] and rows[-1][2] == "(total)" and rows[-1][-1] == "28.80"


def test_cli_prints_refusals_and_exits_nonzero(tmp_path: Path) -> None:
    with running_api(tmp_path, **{"billing.enforce": True}) as api:  # the CLI on SQLite only: the API is the same
        _cli_refusals(api)


def _cli_refusals(billed_api: LiveApi) -> None:
    with billed_api.client() as admin:
        admin.post("/users", {"username": "carol", "password": "carol-password-1"})
        key = admin.post("/keys", {"username": "carol"})
    env = {"ARKSERVE_ENDPOINT": billed_api.url, "ARKSERVE_ACCESS_KEY": key["access_key"],
           "ARKSERVE_SECRET_KEY": key["secret_key"], "ARKSERVE_CLI_CONFIG": "/nonexistent/profiles.yaml"}
    admin_env = {**env, "ARKSERVE_ACCESS_KEY": billed_api.admin_ak, "ARKSERVE_SECRET_KEY": billed_api.admin_sk}
    run = CliRunner()
    out = run.invoke(cli, ["billing", "prepaid", "buy", "cpu.small"], env=env)
    assert out.exit_code == 1 and "[InsufficientBalance]" in out.output and "0.00 CNY" in out.output, out.output
    out = run.invoke(cli, ["service", "create", "carol-web", "--image", "/usr/bin", "--port", "8000", "--command",
                           "true", "--billing", "payg"], env=env)
    assert out.exit_code == 1 and "[InsufficientBalance]" in out.output, out.output
    out = run.invoke(cli, ["billing", "topup", "carol", "50"], env=env)
    assert out.exit_code == 3 and "[AccessDenied]" in out.output
    assert run.invoke(cli, ["billing", "topup", "carol", "50"], env=admin_env).exit_code == 0
    assert run.invoke(cli, ["quota", "set", "carol", "--max-prepaid", "0"], env=admin_env).exit_code == 0
    out = run.invoke(cli, ["billing", "prepaid", "buy", "cpu.small"], env=env)
    assert out.exit_code == 3 and "[QuotaExceeded]" in out.output and "limit 0" in out.output, out.output
    out = run.invoke(cli, ["billing", "balance", "-o", "json"], env=env)
    assert out.exit_code == 0 and json.loads(out.output)["balance"] == 50.0
    out = run.invoke(cli, ["quota", "get", "-o", "json"], env=env)
    assert json.loads(out.output)["max_prepaid"] == 0
    out = run.invoke(cli, ["billing", "statement", "--csv"], env=env)
    assert out.exit_code == 0 and out.output.startswith("month,user,service")
    assert run.invoke(cli, ["billing", "usage", "--all"], env=env).exit_code == 3
    out = run.invoke(cli, ["billing", "usage", "--all", "-o", "json"], env=admin_env)
    assert any(e["kind"] == "topup" and e["username"] == "carol" for e in json.loads(out.output))
