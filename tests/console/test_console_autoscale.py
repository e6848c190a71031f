"""The scaling pencil's manual/automatic choice and the Monitoring tab's in-flight chart, in real headless Chromium
against `arkserve up` (docs/autoscaling.md)."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_the_scaling_pencil_turns_the_autoscaler_on_and_off(console: Console, console_platform: Platform) -> None:
    page, p = console.page, console_platform
    pw = _expect()
    p.create("elk", 1)
    console.login("admin", admin_password(p))
    console.goto("/console/services/elk/instances")
    page.locator("button.pencil").click()
    dlg = page.locator("dialog")
    dlg.locator("[data-scale-mode=auto] input").check()
    pw(dlg.locator("input[name=replicas]")).to_be_hidden()
    dlg.locator("input[name=auto-min]").fill("3")
    dlg.locator("input[name=auto-max]").fill("2")
    dlg.get_by_role("button", name="Apply").click()
    pw(dlg).to_contain_text("at least the minimum")  # checked in the page, nothing sent
    dlg.locator("input[name=auto-min]").fill("1")
    dlg.locator("input[name=auto-max]").fill("3")
    dlg.locator("input[name=auto-target]").fill("2")
    dlg.get_by_role("button", name="Apply").click()
    pw(page.locator(".count-big")).to_contain_text("automatic 1\u20133")
    with p.client() as c:
        a = c.get("/services/elk")["spec"]["autoscale"]
    assert (a["min"], a["max"], a["target"]) == (1, 3, 2)
    console.shot("service-autoscale", scroll_to="#instances-table")

    # the dialog opens on "automatic" now; manual turns the autoscaler off and sets the count
    page.locator("button.pencil").click()
    dlg = page.locator("dialog")
    pw(dlg.locator("[data-scale-mode=auto] input")).to_be_checked()
    dlg.locator("[data-scale-mode=manual] input").check()
    dlg.locator("input[name=replicas]").fill("2")
    dlg.get_by_role("button", name="Apply").click()
    pw(page.locator(".count-big")).not_to_contain_text("automatic")
    with p.client() as c:
        svc = c.get("/services/elk")
    assert svc["spec"]["autoscale"] is None and svc["replicas"] == 2

    # Monitoring: requests in flight over time, in Chinese too
    console.goto("/console/services/elk/metrics")
    pw(page.locator(".chart-card h3", has_text="Requests in flight")).to_be_visible()
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    pw(page.locator(".chart-card h3", has_text="并发请求")).to_be_visible()
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="English").click()
