"""The admin's list of billing accounts (``GET /api/v1/billing/accounts``) through the real API on SQLite and
PostgreSQL: every user's balance, month's spend and quotas agree with ``/billing/balance`` and ``/quotas/{user}``
(a user with no billing rows at all included), it pages with the usual cursors and headers, it is 403 JSON for a
non-admin, and a page costs the same number of SQL statements for 3 users as for 40."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from arkserve.billing import accounts, ledger
from arkserve.sdk.client import ApiError, Client, Page
from arkserve.store import users as user_store
from arkserve.store.db import Store, open_store
from tests.api.conftest import LiveApi, running_api

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 app.py", "instance_type": "cpu.small"}


@pytest.fixture
def api(tmp_path: Path, api_database_url: str) -> Iterator[LiveApi]:
    with running_api(tmp_path, **{"store.database_url": api_database_url}) as live:
        yield live


def _user(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": f"{name}-password-1"})
        key = admin.post("/keys", {"username": name})
    return api.client(key["access_key"], key["secret_key"])


def _all_pages(admin: Client, limit: int) -> tuple[list[dict[str, Any]], list[Page]]:
    rows: list[dict[str, Any]] = []
    pages: list[Page] = []
    cursor: str | None = None
    while True:
        page = admin.page("/billing/accounts", limit=limit, cursor=cursor)
        pages.append(page)
        rows += page.items
        cursor = page.next_cursor
        if cursor is None:
            return rows, pages


def test_accounts_list_matches_balance_and_quotas_and_pages(api: LiveApi) -> None:
    with _user(api, "alice") as alice, _user(api, "carol") as carol, api.client() as admin:
        _user(api, "bob").close()  # no ledger entry, no account row, no service: zeros and unlimited
        admin.post("/billing/topup", {"username": "alice", "amount": 10})
        admin.request("PUT", "/quotas/alice", json={"max_replicas": 4, "max_gpus": 1})
        alice.post("/services", {"name": "web", "replicas": 2, **SPEC})
        alice.patch("/services/web", {"env": {"V": "2"}, "canary": 50})  # 2 stable + 1 canary
        admin.post("/billing/topup", {"username": "carol", "amount": 100})
        carol.post("/billing/prepaid", {"instance_type": "cpu.small", "count": 2})
        admin.post("/billing/adjustments", {"username": "carol", "amount": -1.5, "note": "refund reversed"})
        store = open_store(api.database_url, migrate_schema=False)
        try:
            with store.begin() as conn:  # metered usage this month and last month (not this month's spend)
                carol_id = user_store.get(conn, "carol").id
                start, _ = ledger.month_bounds(ledger.current_month(time.time()))
                ledger.add(conn, carol_id, "usage", -1_234_567, time=time.time(), service="web", seconds=60)
                ledger.add(conn, carol_id, "usage", -7_000_000, time=start - 100, service="web", seconds=60)
        finally:
            store.dispose()

        rows, pages = _all_pages(admin, limit=2)
        assert [(len(p.items), p.total) for p in pages] == [(2, 4), (2, 4)]
        assert [r["username"] for r in rows] == ["admin", "alice", "bob", "carol"]  # username order, no repeats
        for row in rows:
            bal = admin.get("/billing/balance", user=row["username"])
            quota = admin.get(f"/quotas/{row['username']}")
            assert {k: row[k] for k in ("username", "balance", "balance_micro", "currency", "month",
                                        "month_spent")} == {k: bal[k] for k in ("username", "balance",
                                                                                "balance_micro", "currency", "month",
                                                                                "month_spent")}, row
            assert {k: row[k] for k in quota} == quota, row
        by = {r["username"]: r for r in rows}
        assert by["bob"] == {"username": "bob", "balance": 0.0, "balance_micro": 0, "currency": "CNY",
                             "month": by["bob"]["month"], "month_spent": 0.0, "max_replicas": None,
                             "max_gpus": None, "max_prepaid": None, "used_replicas": 0, "used_gpus": 0,
                             "used_prepaid": 0}
        assert (by["alice"]["used_replicas"], by["alice"]["max_replicas"], by["alice"]["balance"]) == (3, 4, 10.0)
        assert by["carol"]["used_prepaid"] == 2
        assert by["carol"]["month_spent"] == round(57.6 + 1.234567, 2)  # prepaid + this month's usage only
        assert by["carol"]["balance_micro"] == 100_000_000 - 57_600_000 - 1_500_000 - 1_234_567 - 7_000_000

        one, _ = _all_pages(admin, limit=1000)
        assert one == rows

        # admin only, as JSON errors; a made-up cursor is refused
        with pytest.raises(ApiError) as e:
            alice.get("/billing/accounts")
        assert (e.value.status, e.value.code) == (403, "AccessDenied") and e.value.request_id
        with pytest.raises(ApiError) as e:
            admin.get("/billing/accounts", cursor="bm90LWEtY3Vyc29y")
        assert (e.value.status, e.value.code) == (400, "InvalidCursor")
        paths = httpx.get(f"{api.url}/api/v1/openapi.json").json()["paths"]
        assert "/api/v1/billing/accounts" in paths


def _statements(store: Store, limit: int) -> tuple[int, int]:
    """(SQL statements one page took, rows on it)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        now = time.time()
        start, end = ledger.month_bounds(ledger.current_month(now))
        with store.read() as conn:
            page = accounts.account_page(conn, after=None, limit=limit, now=now, month_start=start, month_end=end)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return len([s for s in seen if s.lstrip().upper().startswith("SELECT")]), len(page.rows)


def test_a_page_costs_the_same_queries_for_few_and_many_users(store: Store) -> None:
    with store.begin() as conn:
        for i in range(40):
            u = user_store.create(conn, f"user{i:02d}", "x", "user")
            ledger.add(conn, u.id, "topup", 1_000_000 * i, time=time.time())
            accounts.set_limits(conn, u.id, {"max_replicas": i}, time.time())
    few, n_few = _statements(store, 3)
    many, n_many = _statements(store, 40)
    assert (n_few, n_many) == (3, 40)
    assert few == many <= 8, (few, many)
