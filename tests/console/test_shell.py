"""The console's HTTP surface, no browser needed: shell on `/` and `/console/...`, assets, headers, and the
API keeping its JSON errors next to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkserve.console import STATIC
from tests.console.conftest import bare_api


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with bare_api(tmp_path_factory.mktemp("shell")) as base:
        yield base


@pytest.mark.parametrize("path", ["/", "/console/services", "/console/services/new", "/console/services/x/logs",
                                  "/console/settings/keys", "/console/login"])
def test_every_console_path_serves_the_shell(url: str, path: str) -> None:
    r = httpx.get(url + path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js?v=' in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert r.headers["x-frame-options"] == "DENY"


def test_console_root_redirects(url: str) -> None:
    r = httpx.get(url + "/console")
    assert r.status_code == 307 and r.headers["location"] == "/console/services"


def test_assets_are_served_and_revalidated(url: str) -> None:
    names = sorted(p.name for p in STATIC.iterdir())
    assert "app.js" in names and "style.css" in names
    for name in names:
        r = httpx.get(f"{url}/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
        again = httpx.get(f"{url}/static/{name}", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
    assert httpx.get(url + "/static/app.js").headers["content-type"].startswith(("text/javascript",
                                                                                  "application/javascript"))
    assert httpx.get(url + "/static/nope.js").status_code == 404


def test_api_errors_stay_json(url: str) -> None:
    r = httpx.get(url + "/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["code"] == "NotFound"
    unsigned = httpx.get(url + "/api/v1/services")  # neither a signature nor a console session
    assert unsigned.status_code == 401 and unsigned.headers["www-authenticate"] == "HMAC-SHA256"
    assert unsigned.json()["code"] == "MissingAuthorization" and unsigned.json()["request_id"]


def test_static_files_are_flat_small_and_self_contained() -> None:
    """Only the package-data globs (`console/static/*`) ship; no third-party code, no remote URLs."""
    total = 0
    for p in STATIC.iterdir():
        assert p.is_file(), f"{p.name}: subdirectories are not shipped by package-data"
        text = p.read_text(encoding="utf-8")
        total += len(text.encode())
        assert not re.search(r"https?://(?!127\.0\.0\.1|www\.w3\.org/2000/svg)", text.replace("${url}", "")), p.name
    assert total < 240_000  # ~200 KB with the billing pages and the mounts editor: still no bundle in it


def test_every_js_module_imports_only_siblings() -> None:
    for p in Path(STATIC).glob("*.js"):
        for spec in re.findall(r'^import .* from "([^"]+)";', p.read_text(), flags=re.M):
            assert spec.startswith("./") and (STATIC / spec[2:]).is_file(), (p.name, spec)
