"""The API reference page (`/api/v1/docs`): Swagger UI served from this origin (the fastapi-swagger package)
under the console's Content-Security-Policy, in real headless Chromium against the API app alone.

The browser may reach nothing but the API under test: every other request is recorded and refused, and the
page still has to draw the operations list without a CSP violation or a page error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import VIEWPORT, bare_api

DOCS = "/api/v1/docs"


url_data_dir: dict[str, Path] = {}  # base URL -> its data dir (the admin's password is there)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("api-docs")
    with bare_api(tmp) as base:
        url_data_dir[base] = tmp / "data"
        yield base


def test_docs_page_loads_only_from_this_origin_under_a_strict_csp(url: str) -> None:
    r = httpx.get(url + DOCS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text and "cdn" not in r.text and "https://" not in r.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        a = httpx.get(f"{url}{DOCS}/assets/{asset}")
        assert a.status_code == 200 and a.headers["x-content-type-options"] == "nosniff", asset
        assert a.headers["cache-control"] == "no-cache" and a.headers["etag"], asset
    # the rest of the package is not served
    for other in ("__init__.py", "..%2Fmain.py", "favicon-32x32.png", "nope.js"):
        assert httpx.get(f"{url}{DOCS}/assets/{other}").status_code == 404, other


def test_docs_page_renders_the_operations_in_chromium_without_leaving_the_origin(url: str, browser: Any) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    elsewhere: list[str] = []
    problems: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(url + "/"):
            route.continue_()
        else:  # recorded, then refused: the page must not depend on it (nor send anything there)
            elsewhere.append(route.request.url)
            route.abort()

    try:
        context.route("**/*", only_here)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.goto(url + DOCS)
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("arkserve API")
        health = page.locator(".opblock", has_text="Liveness of the API process")
        expect(health).to_have_count(1)
        operations = sum(len(ops) for ops in httpx.get(url + "/api/v1/openapi.json").json()["paths"].values())
        expect(page.locator(".opblock")).to_have_count(operations)
        health.locator(".opblock-summary").click()  # an operation opens: Swagger UI runs, not just drew once
        expect(health.get_by_role("button", name="Try it out")).to_be_visible()
    finally:
        context.close()
    assert elsewhere == [], elsewhere
    assert problems == [], problems


def test_try_it_out_sends_the_console_sessions_csrf_token(url: str, browser: Any) -> None:
    """A console user's "Try it out" of an unsafe method works: the page's request interceptor adds the session's
    X-CSRF-Token (read from GET /api/v1/session), which the API requires of a cookie-authenticated POST."""
    from playwright.sync_api import expect

    password = (url_data_dir[url] / "admin-password").read_text().strip()
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    problems: list[str] = []
    try:
        context.request.post(url + "/api/v1/session", data={"username": "admin", "password": password})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        sent: list[dict[str, str]] = []
        page.on("request", lambda r: sent.append(r.headers) if r.method == "POST" and r.url.endswith("/keys")
                else None)
        page.goto(url + DOCS)
        op = page.locator(".opblock", has_text="Create an access key (SK shown once)")
        op.locator(".opblock-summary").click()
        op.get_by_role("button", name="Try it out").click()
        op.locator("textarea.body-param__text").fill('{"description": "from the API docs"}')
        op.get_by_role("button", name="Execute").click()
        expect(op.locator(".live-responses-table tr.response .response-col_status")).to_have_text("201")
    finally:
        context.close()
    assert len(sent) == 1 and sent[0].get("x-csrf-token"), sent
    with httpx.Client(base_url=url + "/api/v1") as http:
        http.post("/session", json={"username": "admin", "password": password}).raise_for_status()
        assert "from the API docs" in [k["description"] for k in http.get("/keys").json()]
    assert problems == [], problems
