"""The canary on the console's service page, in real headless Chromium against `arkserve up`: start one from the
edit dialog, see the split and both revisions' replicas, roll it back and promote one, each behind a confirmation;
the card in Chinese (docs/canary.md)."""

from __future__ import annotations

import sys
import time
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _no_canary_replicas(p: Platform, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with p.client() as c:
        while True:
            svc: dict[str, Any] = c.get(f"/services/{name}")
            if svc["canary"] is None and {i["revision"] for i in svc["instances"]} == {svc["revision"]}:
                return svc
            assert time.monotonic() < deadline, svc
            time.sleep(0.2)


def test_the_canary_card_splits_rolls_back_and_promotes(console: Console, console_platform: Platform) -> None:
    page, p = console.page, console_platform
    pw = _expect()
    svc = p.create("tui", 1, env={"VERSION": "1"})
    stable = svc["revision"]
    console.login("admin", admin_password(p))
    console.goto("/console/services/tui")
    card = page.locator(".canary-card")
    pw(page.locator(".status-banner")).to_contain_text("1/1 replicas ready")
    pw(card).to_be_hidden()

    # start a canary from the edit dialog: a new command with 20 % of the requests
    page.get_by_role("button", name="Edit configuration").click()
    page.locator("dialog #f-command").fill(f"{sys.executable} -u app.py")
    page.locator("dialog input[name=canary]").fill("20")
    page.locator("dialog").get_by_role("button", name="Save and roll out").click()
    pw(page.locator(".toast", has_text="Saved: the canary starts beside the stable revision")).to_be_visible()
    pw(card).to_be_visible()
    pw(card.locator(".canary-side.stable .canary-weight")).to_have_text("80%")
    pw(card.locator(".canary-side.canary .canary-weight")).to_have_text("20%")
    pw(card.locator(".canary-side.canary")).to_contain_text("1/1 ready", timeout=60_000)
    pw(page.locator("#instances-table .badge.canary")).to_have_count(1)
    console.shot("service-canary", scroll_to=".canary-card")
    console.goto("/console/services")  # the list shows the canary's replicas beside the stable ones
    pw(page.locator("tr[data-service=tui] .canary-count")).to_have_text("+1/1 canary")
    console.goto("/console/services/tui")

    # in Chinese
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    pw(card.locator("h2")).to_have_text("金丝雀发布")
    pw(card.get_by_role("button", name="全量发布")).to_be_visible()
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="English").click()
    pw(card.locator("h2")).to_have_text("Canary")

    # roll back: a confirmation first; cancel changes nothing
    card.get_by_role("button", name="Roll back").click()
    dlg = page.locator("dialog")
    pw(dlg).to_contain_text("Roll back the canary of tui?")
    dlg.get_by_role("button", name="Cancel").click()
    with p.client() as c:
        assert c.get("/services/tui")["canary"] is not None
    card.get_by_role("button", name="Roll back").click()
    page.locator("dialog").get_by_role("button", name="Roll back").click()
    pw(card).to_be_hidden()
    assert _no_canary_replicas(p, "tui")["revision"] == stable

    # promote one started through the API
    with p.client() as c:
        c.patch("/services/tui", {"env": {"VERSION": "2"}, "canary": 50})
    pw(card.locator(".canary-side.canary .canary-weight")).to_have_text("50%")
    card.get_by_role("button", name="Promote").click()
    pw(page.locator("dialog")).to_contain_text("Promote the canary of tui?")
    page.locator("dialog").get_by_role("button", name="Promote").click()
    pw(card).to_be_hidden()
    svc = _no_canary_replicas(p, "tui")
    assert svc["revision"] != stable and svc["spec"]["env"] == {"VERSION": "2"}
    assert console.problems == []
