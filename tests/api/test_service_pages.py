"""The services list a page at a time: keyset cursors stable under concurrent creates, filters, the total
count, refused cursors, and the CLI's first page and ``--all`` (on SQLite and PostgreSQL, like the API suite)."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading

import httpx
import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError, Client
from tests.api.conftest import LiveApi
from tests.paging import check_cli_pages, check_pages_while_writing

SPEC = {"image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 0}


def _create(c: Client, *names: str) -> None:
    for name in names:
        c.post("/services", {**SPEC, "name": name})


def _get(api: LiveApi, **params: object) -> httpx.Response:
    return httpx.get(f"{api.url}/api/v1/services", params=params, auth=ArkAuth(api.admin_ak, api.admin_sk))


def test_pages_neither_repeat_nor_skip_while_services_are_created(live_api: LiveApi) -> None:
    before = [f"svc-{i:03d}" for i in range(0, 120, 2)]  # 60 services: svc-000, svc-002, …
    with live_api.client() as c, live_api.client() as w:
        _create(c, *before)
        check_pages_while_writing(lambda cursor: c.page("/services", limit=7, cursor=cursor),
                                  lambda name: _create(w, name), before,
                                  (n for i in range(1, 120, 2)
                                   for n in (f"svc-{i:03d}", f"new-{i:03d}", f"zzz-{i:03d}")),
                                  lambda row: str(row["name"]))


def test_filters_and_total_count(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "ursula", "password": "ursula-password"})
        key = admin.post("/keys", {"username": "ursula"})
        _create(admin, "alpha-1", "alpha-2", "alpha-3", "beta-1")
        admin.delete("/services/alpha-2")  # recorded as "deleting" until the reconciler removes it
    with live_api.client(key["access_key"], key["secret_key"]) as ursula:
        _create(ursula, "alpha-9", "gamma-1")
        mine = ursula.page("/services")
        assert [s["name"] for s in mine.items] == ["alpha-9", "gamma-1"] and mine.total == 2
        assert ursula.page("/services", owner="admin").items == []  # a filter never widens the scope
        assert ursula.page("/services", prefix="alpha").total == 1
    with live_api.client() as admin:
        page = admin.page("/services", prefix="alpha-", limit=2)
        assert [s["name"] for s in page.items] == ["alpha-1", "alpha-2"] and page.total == 4
        assert [s["name"] for s in admin.page("/services", prefix="alpha-", cursor=page.next_cursor).items] == \
            ["alpha-3", "alpha-9"]
        assert [s["name"] for s in admin.list_all("/services", owner="ursula")] == ["alpha-9", "gamma-1"]
        gone = admin.page("/services", status="deleting")
        assert [s["name"] for s in gone.items] == ["alpha-2"] and gone.total == 1
        assert admin.page("/services", status="pending", prefix="alpha").total == 3
        assert admin.page("/services", prefix="%").total == 0  # LIKE's wildcards are plain characters
        assert admin.page("/services", prefix="a_pha").total == 0
        whole = admin.page("/services")
        assert whole.total == 6 and whole.next_cursor is None and len(whole.items) == 6
    resp = _get(live_api, limit=2)
    assert resp.headers["X-Total-Count"] == "6"
    assert resp.headers["Link"] == f'</api/v1/services?limit=2&cursor={resp.headers["X-Next-Cursor"]}>; rel="next"'


def test_altered_or_foreign_cursors_and_bad_limits_are_refused(live_api: LiveApi) -> None:
    with live_api.client() as c:
        _create(c, "a-1", "a-2", "a-3")
        cursor = c.page("/services", limit=1).next_cursor
        assert cursor is not None and c.page("/services", limit=1, cursor=cursor).items[0]["name"] == "a-2"
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b'"a-1"' in raw  # the cursor continues after a-1; one that says a-0 is well formed but not issued
    edited = base64.urlsafe_b64encode(raw.replace(b'"a-1"', b'"a-0"')).decode().rstrip("=")
    for bad in (edited, flipped, cursor[:-3], "not-a-cursor", "e30", "%%%"):
        resp = _get(live_api, cursor=bad)
        body = resp.json()
        assert resp.status_code == 400 and body["code"] == "InvalidCursor" and body["request_id"], (bad, body)
    resp = _get(live_api, cursor=cursor, prefix="a-")  # issued for other filters
    assert resp.status_code == 400 and "other filters" in resp.json()["message"]
    for params, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"status": "sleepy"}, "status")):
        resp = _get(live_api, **params)
        assert resp.status_code == 422 and resp.json()["field"] == field, resp.text


def test_a_thousand_replicas_and_events_paged_back_from_the_newest(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert c.post("/services", {**SPEC, "name": "wide", "replicas": 1000})["replicas"] == 1000
        with pytest.raises(ApiError) as e:
            c.patch("/services/wide", {"replicas": 1001})
        assert e.value.status == 422
        for n in range(1, 12):
            c.patch("/services/wide", {"replicas": n})  # 12 events: created, scaled 1000 -> 1, …, 10 -> 11
        newest = c.page("/services/wide/events", limit=5)
        assert newest.total == 12 and [e["message"][-8:] for e in newest.items][-1] == "10 -> 11"
        c.patch("/services/wide", {"replicas": 0})  # recorded while paging back: not on the older pages
        pages = [newest.items, *(p.items for p in c.pages("/services/wide/events", limit=5,
                                                             cursor=newest.next_cursor))]
        assert [len(p) for p in pages] == [5, 5, 2]
        shown = [e for p in reversed(pages) for e in p]  # each page is oldest first, pages go back in time
        assert [e["kind"] for e in shown] == ["created"] + ["scaled"] * 11
        assert [e["time"] for e in shown] == sorted(e["time"] for e in shown)
        assert shown[1]["message"].endswith("1000 -> 1") and shown[-1]["message"].endswith("10 -> 11")
        _create(c, "wide-2")
        services_cursor = c.page("/services", limit=1).next_cursor
        assert services_cursor is not None
        with pytest.raises(ApiError) as e:  # a cursor is for its own list
            c.page("/services/wide/events", cursor=services_cursor)
        assert (e.value.status, e.value.code) == (400, "InvalidCursor")


def _cli(api: LiveApi, *args: str) -> tuple[int, str, str]:
    env = {"ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk, "ARKSERVE_ENDPOINT": api.url}
    result = CliRunner().invoke(cli, ["service", "list", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_the_first_page_and_all_pages_with_all(live_api: LiveApi) -> None:
    names = [f"cli-{i:02d}" for i in range(7)]
    with live_api.client() as c:
        _create(c, *names, "other")
    check_cli_pages(lambda *args: _cli(live_api, *args), names, "services")
    code, out, _ = _cli(live_api, "--limit", "2", "--all", "-o", "json")
    assert code == 0 and [s["name"] for s in json.loads(out)] == [*names, "other"]
    code, out, _ = _cli(live_api, "--status", "deleting")
    assert code == 0 and out.splitlines()[1:] == []


def test_services_created_at_once_each_get_a_port(live_api: LiveApi) -> None:
    """On PostgreSQL two creates can read the same highest port at once; the second must not be refused as if
    its name were taken (the port is chosen under a lock)."""
    errors: list[str] = []
    start = threading.Barrier(4)

    def create(worker: int) -> None:
        with live_api.client() as c:
            start.wait()
            for i in range(8):
                try:
                    _create(c, f"at-once-{worker}-{i}")
                except ApiError as exc:
                    errors.append(f"{exc.code}: {exc.message}")

    threads = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with live_api.client() as c:
        ports = [s["endpoint"] for s in c.list_all("/services")]
    assert len(ports) == len(set(ports)) == 32


def test_a_signed_list_is_not_queued_behind_a_writer(live_api: LiveApi) -> None:
    """A key's last use is written at most once a minute: a list right after needs no write lock, so a long
    write transaction (the reconciler's, another create's) does not hold it up."""
    if not live_api.database_url.startswith("sqlite:///"):
        pytest.skip("SQLite's single write lock; PostgreSQL writers do not block readers")
    with live_api.client() as c:
        _create(c, "busy")  # this key's use is now recorded
        writer = sqlite3.connect(live_api.database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # holds the write lock until the end of the test
            assert [s["name"] for s in c.get("/services")] == ["busy"]
            writer.execute("ROLLBACK")
        finally:
            writer.close()
