"""The console's Images page in real headless Chromium against the real registry stack: both tabs with the
pushed images, the copy-pull-command buttons (read back from the clipboard), the push-commands dialog, the
page in Chinese; screenshots for the docs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.conftest import VIEWPORT, Console, browser
from tests.registry.conftest import Stack

__all__ = ["browser"]

pytestmark = pytest.mark.docker


@pytest.fixture
def console(browser: Any, stack: Stack) -> Iterator[Console]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="Europe/Berlin")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.api_url)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        c = Console(page, stack.api_url)
        yield c
    finally:
        context.close()
    assert not c.problems, "\n".join(c.problems)


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_images_tabs_copy_buttons_and_push_commands(console: Console, stack: Stack) -> None:
    pw = _expect()
    stack.add_user("kate")
    assert stack.login("kate").returncode == 0 and stack.login("admin").returncode == 0
    assert stack.push("kate", "kate/demo-flower:v1").returncode == 0
    assert stack.push("admin", "ark-public/pytorch:2.1").returncode == 0
    page = console.page
    console.login("kate", stack.accounts["kate"].password)
    page.get_by_role("link", name="Images").click()
    rows = page.locator("#images-table tbody tr")
    pw(page.get_by_role("tab", name="Private images")).to_have_attribute("aria-selected", "true")
    pw(rows).to_have_count(1)
    pw(rows.first).to_contain_text("kate/demo-flower")
    pw(rows.first).to_contain_text("v1")
    pw(rows.first).to_contain_text("Private")
    pw(page.locator("#image-quota")).to_contain_text("of 50.0 GiB")
    rows.first.get_by_role("button", name="Copy pull command").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"docker pull {stack.address}/kate/demo-flower:v1"
    console.shot("images-private")
    rows.first.get_by_role("button", name="Make public").click()
    pw(rows.first).to_contain_text("Public")
    pw(rows.first.get_by_role("button", name="Make private")).to_be_visible()
    with stack.client("kate") as c:
        assert c.get("/images/demo-flower")["public"]
    rows.first.get_by_role("button", name="Make private").click()
    pw(rows.first).to_contain_text("Private")
    with stack.client("kate") as c:
        assert not c.get("/images/demo-flower")["public"]

    page.get_by_role("tab", name="Public images").click()
    pw(page.get_by_role("tab", name="Public images")).to_have_attribute("aria-selected", "true")
    public = page.locator(f'#images-table tbody tr[data-image="{stack.address}/ark-public/pytorch:2.1"]')
    pw(public).to_contain_text("ark-public/pytorch")
    pw(page.locator("#images-table tbody")).not_to_contain_text("kate/demo-flower")
    public.get_by_role("button", name="Copy pull command").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"docker pull {stack.address}/ark-public/pytorch:2.1"
    console.shot("images-public")

    page.get_by_role("button", name="Push commands").click()
    dlg = page.get_by_role("dialog", name="Push an image")
    pw(dlg).to_contain_text(f"docker login {stack.address} -u kate")
    pw(dlg).to_contain_text(f"docker push {stack.address}/kate/my-app:v1")
    dlg.get_by_role("button", name="Copy: 3. Push it").click()
    assert page.evaluate("navigator.clipboard.readText()") == f"docker push {stack.address}/kate/my-app:v1"
    console.shot("images-push-commands")
    dlg.get_by_role("button", name="Close").click()

    page.get_by_role("button", name="kate").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    pw(page.get_by_role("link", name="镜像")).to_be_visible()
    pw(page.get_by_role("tab", name="公共镜像")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="私有镜像").click()
    pw(page.locator("#images-table thead")).to_contain_text("推送时间")
    pw(page.locator("#images-table tbody tr").first).to_contain_text("私有")
    page.get_by_role("button", name="推送命令").click()
    pw(page.get_by_role("dialog", name="推送镜像")).to_contain_text("用控制台密码登录")
    console.shot("images-zh")

    # the Create form offers the registry's images (yours and the public ones) in the image field's picker
    console.goto("/console/services/new")
    choices = page.locator("#image-choices option")
    pw(choices).to_have_count(2)
    assert {choices.nth(i).get_attribute("value") for i in range(2)} == {
        f"{stack.address}/kate/demo-flower:v1", f"{stack.address}/ark-public/pytorch:2.1"}
