"""Two tabs of one browser share the session cookie: when a login in one tab replaces the session, the other tab
must not go on as the old user (real headless Chromium against the API app alone).

The old tab's next unsafe call fails ``403 CSRFFailed`` (its token belongs to the old session); the console then
reads ``GET /session``: another user (or none) resets the tab to the login page, the same user takes the new
token and the call is made once more. And a tab coming back into view looks at the session again: another
user's is taken up (their name and menu), none sends it to the login page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.conftest import VIEWPORT, Console, bare_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, admin password) of the API alone, with a second user, mallory."""
    tmp = tmp_path_factory.mktemp("tabs")
    with bare_api(tmp) as base:
        password = (tmp / "data" / "admin-password").read_text().strip()
        with httpx.Client(base_url=base + "/api/v1") as http:
            s = http.post("/session", json={"username": "admin", "password": password}).json()
            r = http.post("/users", json={"username": "mallory", "password": "Mallory-pass-123", "role": "user"},
                          headers={"X-CSRF-Token": s["csrf_token"]})
            assert r.status_code == 201, r.text
        yield base, password


def keys_of(base: str, username: str, password: str) -> list[str]:
    with httpx.Client(base_url=base + "/api/v1") as http:
        http.post("/session", json={"username": username, "password": password}).raise_for_status()
        return [k["access_key"] for k in http.get("/keys").json()]


@pytest.fixture
def tabs(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        yield context
    finally:
        context.close()


def _tab(context: Any, base: str) -> Console:
    page = context.new_page()
    page.set_default_timeout(20_000)
    return Console(page, base)


def _relogin_in_second_tab(context: Any, base: str, username: str, password: str) -> Console:
    b = _tab(context, base)
    b.goto("/console/services")
    b.page.locator(".user-button").click()
    b.page.get_by_role("menuitem", name="Log out").click()
    b.login(username, password)
    return b


def _create_key(a: Console) -> Any:
    a.page.locator(".page-actions").get_by_role("button", name="Create access key").click()
    dialog = a.page.locator("dialog[open]")
    dialog.locator("button[type=submit]").click()
    return dialog


def test_a_tab_whose_session_became_another_users_goes_back_to_the_login(tabs: Any, api: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    base, password = api
    a = _tab(tabs, base)
    a.login("admin", password)
    a.goto("/console/settings/keys")
    expect(a.page.locator(".user-name")).to_have_text("admin")
    admin_keys = keys_of(base, "admin", password)  # the platform made one at its start
    b = _relogin_in_second_tab(tabs, base, "mallory", "Mallory-pass-123")
    expect(b.page.locator(".user-name")).to_have_text("mallory")

    _create_key(a)  # tab A still draws admin's page: its POST carries the old token
    expect(a.page.locator("form.login-card")).to_be_visible()
    expect(a.page.locator(".user-name")).to_have_count(0)
    assert keys_of(base, "mallory", "Mallory-pass-123") == []  # nothing was done as mallory
    assert keys_of(base, "admin", password) == admin_keys
    assert not a.problems and not b.problems, a.problems + b.problems


def test_a_tab_whose_session_was_renewed_for_the_same_user_retries_with_the_new_token(
        tabs: Any, api: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    base, password = api
    a = _tab(tabs, base)
    a.login("admin", password)
    a.goto("/console/settings/keys")
    admin_keys = keys_of(base, "admin", password)
    posts: list[int] = []
    a.page.on("response", lambda r: posts.append(r.status) if r.request.method == "POST"
              and r.url.endswith("/api/v1/keys") else None)
    _relogin_in_second_tab(tabs, base, "admin", password)

    dialog = _create_key(a)
    expect(dialog.locator("#secret-ak")).to_be_visible()  # made, as admin, on the retry
    made = dialog.locator("#secret-ak").inner_text()
    assert sorted(keys_of(base, "admin", password)) == sorted([*admin_keys, made])
    assert posts == [403, 201]
    expect(a.page.locator(".user-name")).to_have_text("admin")
    assert not a.problems, a.problems


def test_a_tab_coming_back_into_view_shows_whose_session_it_now_has(tabs: Any, api: tuple[str, str]) -> None:
    from playwright.sync_api import expect

    base, password = api
    a = _tab(tabs, base)
    a.login("admin", password)
    a.goto("/console/services")
    expect(a.page.locator(".user-name")).to_have_text("admin")
    expect(a.page.get_by_role("link", name="Users")).to_have_count(1)
    b = _relogin_in_second_tab(tabs, base, "mallory", "Mallory-pass-123")
    expect(a.page.locator(".user-name")).to_have_text("admin")  # nothing told tab A yet
    a.page.evaluate("window.dispatchEvent(new Event('focus'))")  # the user comes back to tab A
    expect(a.page.locator(".user-name")).to_have_text("mallory")  # not admin's name over mallory's services
    expect(a.page.get_by_role("link", name="Users")).to_have_count(0)  # nor admin's navigation
    b.page.locator(".user-button").click()
    b.page.get_by_role("menuitem", name="Log out").click()
    expect(b.page.locator("form.login-card")).to_be_visible()
    a.page.evaluate("window.dispatchEvent(new Event('focus'))")
    expect(a.page.locator("form.login-card")).to_be_visible()
    assert not a.problems and not b.problems, a.problems + b.problems
