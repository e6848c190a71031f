"""Pages that must not go blank, in real headless Chromium against the whole platform (`arkserve up`): the
service details when a side request (`/healthz`) fails once, and the disk page on a URL that is no valid
%-encoding. Either draws its page, or says what went wrong in the page's error banner.
"""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    """Playwright's ``expect`` (imported late: without Playwright the fixtures skip or fail with the reason)."""
    from playwright.sync_api import expect

    return expect


def test_details_page_draws_when_healthz_fails(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    with p.client() as c:
        c.post("/services", {"name": "steady", "image": str(p.app_dir), "port": 8000, "command": "true",
                             "replicas": 0})
    console.login("admin", admin_password(p))
    # the API restarting, a proxy's 502, a network blip: /healthz only tells what the port means
    page.route(re.compile(r".*/api/v1/healthz$"), lambda route: route.fulfill(
        status=503, json={"code": "StoreUnavailable", "message": "store unavailable", "request_id": "x"}))
    for tab in ("", "/logs", "/events"):
        console.goto(f"/console/services/steady{tab}")  # a fresh load: the runtime is asked again
        pw(page.get_by_role("heading", name=re.compile(r"^steady"))).to_be_visible()
        pw(page.get_by_role("tab", name="Instances")).to_be_visible()
        pw(page.locator(".overview")).to_contain_text("8000")
    page.unroute(re.compile(r".*/api/v1/healthz$"))
    page.route(re.compile(r".*/api/v1/healthz$"), lambda route: route.abort("connectionrefused"))
    console.goto("/console/services/steady/metrics")
    pw(page.get_by_role("heading", name=re.compile(r"^steady"))).to_be_visible()


def test_disk_url_that_is_no_valid_encoding_shows_the_error_banner(console: Console,
                                                                   console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    console.login("admin", admin_password(p))
    console.goto("/console/disk/50%")
    pw(page.locator("#disk-crumbs")).to_contain_text("50%")  # the segment as typed
    pw(page.locator(".banner.error")).to_be_visible()  # the API's answer for that folder, as for any other
    pw(page.locator(".banner.error")).not_to_be_empty()
    page.locator("#disk-crumbs").get_by_role("link", name=re.compile(".")).first.click()  # back to the root
    pw(page).to_have_url(re.compile(r"/console/disk$"))
    pw(page.locator(".banner.error")).to_be_hidden()
