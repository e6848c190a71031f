"""The model market's list a page at a time, on SQLite and PostgreSQL: keyset cursors stable while models are
published, the filters (prefix, search, task, framework, publisher, visibility) inside the caller's scope,
the total count, the facets, refused cursors, and ``arkserve model list`` with ``--limit``/``--cursor``/``--all``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError, Client
from tests.api.conftest import LiveApi, api_database_url  # live_api comes through tests/storage/conftest.py
from tests.paging import check_cli_pages, check_pages_while_writing
from tests.storage.archives import tar_of

__all__ = ["api_database_url"]  # on SQLite and on PostgreSQL, like the API suite


def _publish(c: Client, name: str, **card: Any) -> None:
    c.upload("PUT", f"/models/{name}/versions/1/archive", iter([tar_of({"w.bin": name.encode()})]),
             params=card, content_type="application/x-tar")


def _user(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": f"{name}-password-1"})
        key = admin.post("/keys", {"username": name})
    return api.client(key["access_key"], key["secret_key"])


def _names(rows: list[dict[str, Any]]) -> list[str]:
    return [m["name"] for m in rows]


def test_pages_neither_repeat_nor_skip_while_models_are_published(live_api: LiveApi) -> None:
    before = [f"m-{i:03d}" for i in range(0, 60, 2)]  # 30 models: m-000, m-002, …
    with live_api.client() as c, live_api.client() as w:
        for name in before:
            _publish(c, name)
        check_pages_while_writing(lambda cursor: c.page("/models", limit=4, cursor=cursor),
                                  lambda name: _publish(w, name), before,
                                  (n for i in range(1, 60, 2) for n in (f"m-{i:03d}", f"a-{i:03d}", f"z-{i:03d}")),
                                  lambda row: str(row["name"]))


def test_filters_stay_inside_the_callers_scope_with_a_total_and_facets(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        _publish(admin, "resnet-18", task="image-classification", framework="pytorch", public="true",
                 description="Classifies images.")
        _publish(admin, "resnet-50", task="image-classification", framework="onnx", public="true")
        _publish(admin, "admin-draft", task="secret-task", framework="jax")
    with _user(live_api, "bob") as bob:
        _publish(bob, "bob-bert", task="text-classification", framework="pytorch")
        _publish(bob, "resnet-bob", task="image-classification", framework="pytorch")
    with _user(live_api, "eve") as eve:
        seen = eve.page("/models")
        assert _names(seen.items) == ["resnet-18", "resnet-50"] and seen.total == 2  # public ones only
        assert eve.page("/models", owner="bob").items == []  # a filter never widens the scope
        assert eve.page("/models", visibility="private").total == 0
        assert eve.get("/model-facets") == {"tasks": ["image-classification"], "frameworks": ["onnx", "pytorch"]}
    with _client_of(live_api, "bob") as bob:
        assert _names(bob.page("/models").items) == ["bob-bert", "resnet-18", "resnet-50", "resnet-bob"]
        assert bob.page("/models", visibility="private").total == 2
        assert _names(bob.page("/models", prefix="resnet-", framework="pytorch").items) == ["resnet-18", "resnet-bob"]
    with live_api.client() as admin:
        page = admin.page("/models", prefix="resnet", limit=2)
        assert _names(page.items) == ["resnet-18", "resnet-50"] and page.total == 3
        assert _names(admin.page("/models", prefix="resnet", limit=2, cursor=page.next_cursor).items) == ["resnet-bob"]
        assert _names(admin.list_all("/models", owner="bob", limit=1)) == ["bob-bert", "resnet-bob"]
        assert _names(admin.page("/models", q="CLASSIFIES").items) == ["resnet-18"]  # name or description, any case
        assert _names(admin.page("/models", task="image-classification", visibility="public").items) == \
            ["resnet-18", "resnet-50"]
        assert admin.page("/models", prefix="%").total == 0 and admin.page("/models", prefix="r_snet").total == 0
        assert admin.page("/models", q="%").total == 0 and admin.page("/models", q="r_snet").total == 0
        assert admin.get("/model-facets")["tasks"] == ["image-classification", "secret-task", "text-classification"]
        listed = admin.page("/models", prefix="resnet-18").items[0]
        assert listed["versions"][0]["files"] is None and listed["size"] == len(b"resnet-18")  # no manifests


def _client_of(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        key = admin.post("/keys", {"username": name})
    return api.client(key["access_key"], key["secret_key"])


def _get(api: LiveApi, **params: object) -> httpx.Response:
    return httpx.get(f"{api.url}/api/v1/models", params=params, auth=ArkAuth(api.admin_ak, api.admin_sk))


def test_altered_or_foreign_cursors_and_bad_parameters_are_refused(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for name in ("b-1", "b-2", "b-3"):
            _publish(c, name)
        c.post("/services", {"name": "svc-1", "image": "/usr/bin", "port": 27777, "command": "true", "replicas": 0})
        c.post("/services", {"name": "svc-2", "image": "/usr/bin", "port": 27777, "command": "true", "replicas": 0})
        cursor = c.page("/models", limit=1).next_cursor
        assert cursor is not None and _names(c.page("/models", limit=1, cursor=cursor).items) == ["b-2"]
        services_cursor = c.page("/services", limit=1).next_cursor
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    edited = base64.urlsafe_b64encode(raw.replace(b'"b-1"', b'"b-0"')).decode().rstrip("=")
    for bad in (edited, cursor[:-3], "not-a-cursor", services_cursor):  # a services cursor is for services only
        resp = _get(live_api, cursor=bad)
        assert resp.status_code == 400 and resp.json()["code"] == "InvalidCursor" and resp.json()["request_id"]
    resp = _get(live_api, cursor=cursor, task="x")  # issued for other filters
    assert resp.status_code == 400 and "other filters" in resp.json()["message"]
    for params, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"visibility": "hidden"},
                                                                                "visibility")):
        resp = _get(live_api, **params)
        assert resp.status_code == 422 and resp.json()["field"] == field, resp.text
    resp = _get(live_api, limit=1)
    assert resp.headers["X-Total-Count"] == "3"
    assert resp.headers["Link"] == f'</api/v1/models?limit=1&cursor={resp.headers["X-Next-Cursor"]}>; rel="next"'
    with pytest.raises(ApiError) as e, live_api.client() as c:
        c.page("/models", visibility="everyone")
    assert e.value.status == 422


def _cli(api: LiveApi, *args: str) -> tuple[int, str, str]:
    env = {"ARKSERVE_ACCESS_KEY": api.admin_ak, "ARKSERVE_SECRET_KEY": api.admin_sk, "ARKSERVE_ENDPOINT": api.url}
    result = CliRunner().invoke(cli, ["model", "list", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_prints_the_first_page_and_every_page_with_all(live_api: LiveApi) -> None:
    names = [f"cli-{i:02d}" for i in range(7)]
    with live_api.client() as c:
        for name in [*names, "other"]:
            _publish(c, name, task="demo")
    check_cli_pages(lambda *args: _cli(live_api, *args), names, "models")
    code, out, _ = _cli(live_api, "--limit", "2", "--all", "--task", "demo", "-o", "json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == [*names, "other"]
    code, out, _ = _cli(live_api, "--visibility", "public")
    assert code == 0 and out.splitlines()[1:] == []
