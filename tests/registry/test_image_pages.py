"""The image list a page at a time against the real registry (``docker-registry``) and the real token service:
keyset cursors stable while repositories are pushed, a repository with no tag left skipped with the next one
filling the page, the filters (prefix, owner, public) inside the caller's scope, refused cursors, and
``arkserve image list --all``, and the console's Images page paging and searching on the server in real
Chromium. Images are pushed over the registry's HTTP API (a config blob, a layer and a
manifest, with a token from ``GET /api/v1/registry/token`` like ``docker push`` gets), so no dockerd is needed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from arkserve.cli.main import cli
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import Client
from tests.api.conftest import api_database_url
from tests.console.conftest import VIEWPORT, Console, browser
from tests.live import free_port, gateway_port_base, serve, server_port
from tests.paging import check_pages_while_writing
from tests.registry.conftest import REGISTRY_BINARY, registry_part
from tests.required import unavailable

__all__ = ["api_database_url", "browser"]  # both stores; real headless Chromium for the console's Images page

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Registry:
    api_url: str
    registry_url: str
    keys: dict[str, tuple[str, str]]  # user -> (AK, SK)

    def client(self, who: str = "admin") -> Client:
        return Client(self.api_url, *self.keys[who])

    def add_user(self, name: str) -> None:
        with self.client() as admin:
            admin.post("/users", {"username": name, "password": f"{name}-password-1"})
            key = admin.post("/keys", {"username": name})
        self.keys[name] = (key["access_key"], key["secret_key"])

    def push(self, who: str, repo: str, tag: str = "v1") -> None:
        """``docker push`` in HTTP: a token for push (which records the repository), two blobs, the manifest."""
        with httpx.Client(timeout=30, trust_env=False) as http:
            token = http.get(f"{self.api_url}/api/v1/registry/token", auth=self.keys[who],
                             params={"service": "arkserve", "scope": f"repository:{repo}:pull,push"})
            assert token.status_code == 200, token.text
            auth = {"Authorization": f"Bearer {token.json()['token']}"}
            blobs = []
            for data in (json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
                    "type": "layers", "diff_ids": []}}).encode(), f"{repo}:{tag}".encode()):
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                start = http.post(f"{self.registry_url}/v2/{repo}/blobs/uploads/", headers=auth)
                assert start.status_code == 202, start.text
                location = httpx.URL(self.registry_url).join(start.headers["location"])
                done = http.put(location.copy_merge_params({"digest": digest}), content=data,
                                headers={**auth, "Content-Type": "application/octet-stream"})
                assert done.status_code == 201, done.text
                blobs.append({"digest": digest, "size": len(data)})
            manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **blobs[0]},
                        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **blobs[1]}]}
            put = http.put(f"{self.registry_url}/v2/{repo}/manifests/{tag}", content=json.dumps(manifest),
                           headers={**auth, "Content-Type": MANIFEST})
            assert put.status_code == 201, put.text


@contextmanager
def running_registry(tmp_path: Path, database_url: str = "") -> Iterator[Registry]:
    """The API (in a thread) and ``arkserve registry`` on loopback, over a fresh store (SQLite by default)."""
    if not (Path(REGISTRY_BINARY).is_file() and os.access(REGISTRY_BINARY, os.X_OK)):
        unavailable("ARKSERVE_REQUIRE_REGISTRY", f"no {REGISTRY_BINARY} (apt-get install docker-registry)")
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    api_port = free_port()
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "api.port": api_port, "registry.port": server_port(),
                           "gateway.port_base": gateway_port_base(), "store.database_url": database_url}, env=env)
    boot = prepare(s, env=env)
    child_env = {**os.environ, **settings_mod.to_env(s), **env, "ARKSERVE_DATA_DIR": str(s.data_dir)}
    child_env.pop("ARKSERVE_MASTER_KEY", None)
    try:
        with serve(create_app(s, boot.store, boot.master), port=api_port) as url, registry_part(s, child_env):
            yield Registry(url, f"http://{s.registry.host}:{s.registry.port}",
                           {"admin": (boot.access_key, boot.secret_key)})
    finally:
        boot.store.dispose()


@pytest.fixture
def registry(tmp_path: Path, api_database_url: str) -> Iterator[Registry]:
    """On SQLite and on PostgreSQL, like the API suite."""
    with running_registry(tmp_path, api_database_url) as r:
        yield r


def _names(rows: list[dict[str, object]]) -> list[str]:
    return [str(r["name"]) for r in rows]


def test_pages_neither_repeat_nor_skip_while_repositories_are_pushed(registry: Registry) -> None:
    registry.add_user("kate")
    before = [f"kate/r-{i:02d}" for i in range(0, 24, 2)]  # 12 repositories
    for repo in before:
        registry.push("kate", repo)
    with registry.client("kate") as c:
        check_pages_while_writing(lambda cursor: c.page("/images", limit=3, cursor=cursor),
                                  lambda repo: registry.push("kate", repo), before,
                                  (r for i in range(1, 24, 2)
                                   for r in (f"kate/r-{i:02d}", f"kate/a-{i:02d}", f"kate/z-{i:02d}")),
                                  lambda row: str(row["name"]), timeout=60)


def test_filters_scope_untagged_repositories_and_cursors(registry: Registry) -> None:
    registry.add_user("kate")
    registry.add_user("leo")
    for repo in ("kate/demo-flower", "kate/demo-tree", "kate/team/demo-x", "kate/web", "kate/gone"):
        registry.push("kate", repo)
    registry.push("leo", "leo/demo-secret")
    registry.push("leo", "leo/shared")
    registry.push("admin", "ark-public/pytorch")
    with registry.client("leo") as leo:
        leo.request("PUT", "/images/shared/visibility", json={"public": True})
    with registry.client("kate") as kate:
        kate.delete("/images/gone:v1")  # no tag left: not listed, the next repository fills the page
        page = kate.page("/images", limit=2)
        assert _names(page.items) == ["kate/demo-flower", "kate/demo-tree"] and page.total == 5
        page = kate.page("/images", limit=2, cursor=page.next_cursor)
        assert _names(page.items) == ["kate/team/demo-x", "kate/web"] and page.next_cursor is None
        assert _names(kate.page("/images", prefix="demo").items) == ["kate/demo-flower", "kate/demo-tree",
                                                                     "kate/team/demo-x"]  # or after a '/'
        assert _names(kate.page("/images", prefix="kate/demo-").items) == ["kate/demo-flower", "kate/demo-tree"]
        assert kate.page("/images", owner="leo").items == []  # a filter never widens the scope
        public = kate.page("/images", public="true")
        assert _names(public.items) == ["ark-public/pytorch", "leo/shared"] and public.total == 2
        assert all(r["public"] for r in public.items)
        assert _names(kate.page("/images", public="true", owner="leo").items) == ["leo/shared"]
        assert _names(kate.page("/images", public="true", prefix="py").items) == ["ark-public/pytorch"]
        mine = kate.page("/images", limit=1)
    with registry.client() as admin:
        assert _names(admin.page("/images", owner="leo").items) == ["leo/demo-secret", "leo/shared"]  # admins
        assert admin.page("/images", prefix="%").total == 0
    auth = ArkAuth(*registry.keys["kate"])
    url = f"{registry.api_url}/api/v1/images"
    assert mine.next_cursor is not None
    for params in ({"cursor": mine.next_cursor[:-3]}, {"cursor": mine.next_cursor, "public": "true"}):
        resp = httpx.get(url, params=params, auth=auth)
        assert resp.status_code == 400 and resp.json()["code"] == "InvalidCursor", resp.text
    resp = httpx.get(url, params={"limit": 501}, auth=auth)
    assert resp.status_code == 422 and resp.json()["field"] == "limit"
    resp = httpx.get(url, params={"limit": 1}, auth=auth)
    assert resp.headers["X-Total-Count"] == "5" and resp.headers["Link"].endswith('>; rel="next"')

    env = {"ARKSERVE_ACCESS_KEY": registry.keys["kate"][0], "ARKSERVE_SECRET_KEY": registry.keys["kate"][1],
           "ARKSERVE_ENDPOINT": registry.api_url}
    result = CliRunner().invoke(cli, ["image", "list", "--limit", "1"], env=env, catch_exceptions=False)
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["kate/demo-flower"]
    assert "1 of 5 repositories" in result.stderr
    result = CliRunner().invoke(cli, ["image", "list", "--limit", "1", "--all"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and result.stderr == "", result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == [
        "NAME", "kate/demo-flower", "kate/demo-tree", "kate/team/demo-x", "kate/web"]


def test_console_pages_searches_and_refreshes_the_page_in_view(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect as pw

    with running_registry(tmp_path) as registry:
        _console_pages(browser, registry, pw)


def _console_pages(browser: Any, registry: Registry, pw: Any) -> None:
    registry.add_user("kate")
    for i in range(23):  # two pages of 20 repositories, found by a prefix the other one lacks
        registry.push("kate", f"kate/img-{i:02d}")
    registry.push("kate", "kate/other")
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="Europe/Berlin")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        console = Console(page, registry.api_url)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/v1/images?" in r.url else None)
        console.login("kate", "kate-password-1")
        console.goto("/console/images")
        rows, note = page.locator("#images-table tbody tr[data-image]"), page.locator(".list-note")
        pw(note).to_have_text("1\N{EN DASH}20 of 24")
        with page.expect_response(lambda r: "prefix=img-" in r.url):
            page.get_by_placeholder("Search by name").fill("img-")
        pw(note).to_have_text("1\N{EN DASH}20 of 23")
        pw(rows).to_have_count(20)
        pw(rows.first).to_contain_text("kate/img-00")
        prev, more = page.get_by_role("button", name="Previous"), page.get_by_role("button", name="Next")
        pw(prev).to_be_disabled()
        more.click()
        pw(note).to_have_text("21\N{EN DASH}23 of 23")
        pw(rows).to_have_count(3)
        pw(more).to_be_disabled()
        # the refresh reloads this page (its cursor, 20 rows), and a new tag on it shows up
        asked.clear()
        registry.push("kate", "kate/img-21", "v2")
        pw(page.locator('#images-table tr[data-image$="/kate/img-21:v2"]')).to_have_count(1, timeout=15_000)
        assert asked and all("limit=20" in u and "cursor=" in u and "prefix=img-" in u for u in asked), asked
        pw(rows).to_have_count(4)
        prev.click()
        pw(note).to_have_text("1\N{EN DASH}20 of 23")
        page.get_by_placeholder("Search by name").fill("nothing-")
        pw(page.locator("#images-table")).to_contain_text("No image matches the search.")
        pw(note).to_have_text("")
        page.get_by_role("tab", name="Public images").click()
        pw(page.locator("#images-table")).to_contain_text("No public images yet.")
    finally:
        context.close()
    assert not console.problems, "\n".join(console.problems)
