"""The Chinese console shows the API's errors in Chinese, in real headless Chromium against the API app alone.

The texts come from ``lang-zh.js`` (``error.<code>``), filled with the values of the error's body (a price, a
balance) or the name its message quotes; ``tests/unit/test_error_translations.py`` checks that every code has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.conftest import VIEWPORT, Console, bare_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin password) of the API alone."""
    tmp = tmp_path_factory.mktemp("i18n-errors")
    with bare_api(tmp) as base:
        yield base, (tmp / "data" / "admin-password").read_text().strip()


@pytest.fixture
def zh(browser: Any, api: tuple[str, str]) -> Iterator[Console]:
    """A page in a zh-CN browser, logged in as the admin (the console picks Chinese from the browser's language)."""
    base, password = api
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        c = Console(page, base)
        c.goto("/console/login")
        page.locator("input[name=username]").fill("admin")
        page.locator("input[name=password]").fill(password)
        page.locator("form.login-card button[type=submit]").click()
        page.locator(".topbar").wait_for()
        yield c
    finally:
        context.close()
    assert not c.problems, "\n".join(c.problems)  # a missing translation logs a warning


def test_an_api_error_in_a_form_is_shown_in_chinese(zh: Console) -> None:
    from playwright.sync_api import expect

    page = zh.page
    zh.goto("/console/admin/users")
    page.get_by_role("button", name="创建用户").click()
    dialog = page.locator("dialog[open]")
    dialog.locator("input[name=username]").fill("admin")  # exists: 409 UserExists from the API
    dialog.locator("input[name=password]").fill("Another-pass-123")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".form-error")).to_have_text("用户“admin”已存在。")


def test_the_values_of_an_error_body_fill_the_chinese_text(zh: Console) -> None:
    text = zh.page.evaluate("""async () => {
        const { api } = await import('/static/api.js');
        const { errorText } = await import('/static/ui.js');
        try { await api.post('/billing/prepaid', { instance_type: 'cpu.large', count: 1, period: 'month' }); }
        catch (err) { return [err.code, err.message, errorText(err)]; }
        return ['bought'];
    }""")
    code, english, chinese = text
    assert code == "InsufficientBalance", text
    price, currency = re.search(r"costs ([\d.]+) (\w+)", english).groups()  # type: ignore[union-attr]
    assert chinese == f"余额不足：需要 {float(price):g} {currency}，当前余额 0 {currency}，请先充值。", text  # noqa: RUF001


def test_an_error_without_its_values_drops_the_optional_part(zh: Console) -> None:
    text = zh.page.evaluate("""async () => {
        const { errorText } = await import('/static/ui.js');
        return [errorText({ code: 'PathExists', message: 'the root of the disk exists already' }),
                errorText({ code: 'NoSuchCode', message: 'an unknown code keeps the API message' })];
    }""")
    assert text == ["同名文件或文件夹已存在（替换文件请选择覆盖；文件夹不能被覆盖）。",  # noqa: RUF001
                    "an unknown code keeps the API message"]


def test_the_english_console_keeps_the_api_message(browser: Any, api: tuple[str, str]) -> None:
    base, password = api
    with httpx.Client(base_url=base) as http:
        s = http.post("/api/v1/session", json={"username": "admin", "password": password}).json()
        r = http.post("/api/v1/users", json={"username": "admin", "password": "Another-pass-123"},
                      headers={"X-CSRF-Token": s["csrf_token"]})
    assert r.status_code == 409 and r.json()["code"] == "UserExists"
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        page = context.new_page()
        page.goto(base + "/console/login")
        shown = page.evaluate("async (body) => (await import('/static/ui.js')).errorText(body)", r.json())
    finally:
        context.close()
    assert shown == r.json()["message"]
