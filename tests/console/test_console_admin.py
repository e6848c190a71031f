"""The console's admin pages, configuration edits, deletion, a plain user's view and logging out, in real
headless Chromium against the whole platform (`arkserve up`).

Each test does what a person does in the browser; the API (admin profile) only sets things up and checks
the outcome. A second person at another browser is a fresh browser context (``open_console``).
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import requests

from arkserve.sdk import ArkRequestsAuth
from tests.console.conftest import Console, admin_password, open_console
from tests.e2e.conftest import Platform

USER_PASSWORD = "plain-user-pass-1"


def _expect() -> Any:
    """Playwright's ``expect`` (imported late: without Playwright the fixtures skip or fail with the reason)."""
    from playwright.sync_api import expect

    return expect


def _dialog(page: Any) -> Any:
    return page.locator("dialog[open]")


def _ensure_user(p: Platform, username: str, role: str = "user") -> None:
    with p.client() as c:
        if username not in {u["username"] for u in c.get("/users")}:
            c.post("/users", {"username": username, "password": USER_PASSWORD, "role": role})


def _login_fails(console: Console, username: str, password: str) -> None:
    page, pw = console.page, _expect()
    console.goto("/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    pw(page.locator(".login-card .form-error")).to_have_text("Wrong username or password.")
    pw(page).to_have_url(re.compile(r"/console/login$"))
    pw(page.locator(".topbar")).to_have_count(0)


# ---- Admin -> Users ----

def test_admin_creates_disables_enables_and_deletes_a_user(console: Console, console_platform: Platform,
                                                           browser: Any) -> None:
    page, p, pw = console.page, console_platform, _expect()
    console.login("admin", admin_password(p))
    page.get_by_role("link", name="Users", exact=True).click()
    pw(page).to_have_url(re.compile(r"/console/admin/users$"))
    pw(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    me = page.locator('#users-table tr[data-user="admin"]')
    pw(me).to_contain_text("(you)")
    pw(me.locator(".badge.on")).to_have_text("Active")
    # nobody deletes or disables themselves from here (the API refuses both too: SelfDelete, SelfDisable)
    pw(me.get_by_role("button")).to_have_count(0)

    # create through the form; the browser checks the fields first
    page.get_by_role("button", name="Create user").click()
    dlg = _dialog(page)
    dlg.get_by_label("Username").fill("Alice")
    dlg.get_by_label("Password").fill("short")
    dlg.get_by_role("button", name="Create user").click()
    pw(dlg.locator('.field[data-field="username"] .field-error')).to_contain_text("starting with a letter")
    dlg.get_by_label("Username").fill("alice")
    dlg.get_by_role("button", name="Create user").click()
    pw(dlg.locator('.field[data-field="password"] .field-error')).to_have_text("At least 8 characters.")
    dlg.get_by_label("Password").fill(USER_PASSWORD)
    dlg.get_by_label("Role").select_option("user")
    dlg.get_by_role("button", name="Create user").click()
    pw(dlg).to_have_count(0)
    pw(page.locator(".toast", has_text="User created")).to_be_visible()
    row = page.locator('#users-table tr[data-user="alice"]')
    pw(row).to_contain_text("User")
    pw(row.locator(".badge.on")).to_have_text("Active")

    # disable, after a confirmation (Cancel keeps her active): alice cannot log in (a readable error in her own
    # browser, not a blank page)
    row.get_by_role("button", name="Disable").click()
    dlg = _dialog(page)
    pw(dlg.get_by_role("heading", name="Disable user alice?")).to_be_visible()
    pw(dlg).to_contain_text("logged out at once")
    dlg.get_by_role("button", name="Cancel").click()
    pw(dlg).to_have_count(0)
    pw(row.locator(".badge.on")).to_have_text("Active")
    with p.client() as c:
        assert c.get("/users/alice")["disabled"] is False
    row.get_by_role("button", name="Disable").click()
    _dialog(page).get_by_role("button", name="Disable").click()
    pw(row.locator(".badge.off")).to_have_text("Disabled")
    pw(row.get_by_role("button", name="Enable")).to_be_visible()
    with p.client() as c:
        assert c.get("/users/alice")["disabled"] is True
    with open_console(browser, p) as alice:
        _login_fails(alice, "alice", USER_PASSWORD)

    # enable again: now she can
    row.get_by_role("button", name="Enable").click()
    pw(row.locator(".badge.on")).to_have_text("Active")
    with open_console(browser, p) as alice:
        alice.login("alice", USER_PASSWORD)
        pw(alice.page.get_by_role("heading", name="Inference services")).to_be_visible()
        pw(alice.page.locator(".user-button")).to_contain_text("alice")

    # delete with confirmation: Cancel keeps her, Delete removes her
    row.get_by_role("button", name="Delete").click()
    dlg = _dialog(page)
    pw(dlg.get_by_role("heading", name="Delete user alice?")).to_be_visible()
    dlg.get_by_role("button", name="Cancel").click()
    pw(dlg).to_have_count(0)
    pw(row).to_be_visible()
    row.get_by_role("button", name="Delete").click()
    _dialog(page).get_by_role("button", name="Delete").click()
    pw(page.locator(".toast", has_text="User deleted")).to_be_visible()
    pw(row).to_have_count(0)
    pw(me).to_be_visible()
    with p.client() as c:
        assert "alice" not in {u["username"] for u in c.get("/users")}
    with open_console(browser, p) as alice:
        _login_fails(alice, "alice", USER_PASSWORD)


# ---- Admin -> Instance types ----

def test_admin_adds_an_instance_type_offered_in_the_create_form_and_deletes_it(
        console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    console.login("admin", admin_password(p))
    page.get_by_role("link", name="Instance types", exact=True).click()
    pw(page).to_have_url(re.compile(r"/console/admin/instance-types$"))
    pw(page.locator('#types-table tr[data-type="cpu.small"]')).to_be_visible()

    page.get_by_role("button", name="Add instance type").click()
    dlg = _dialog(page)
    dlg.get_by_label(re.compile(r"^Name")).fill("cpu.tiny")
    dlg.get_by_label("vCPU", exact=True).fill("0.5")
    dlg.get_by_label("Memory (MiB)").fill("512")
    dlg.get_by_label("Price per hour").fill("0.02")
    dlg.get_by_label("Billing").select_option("reserved")
    dlg.get_by_label("Description").fill("for tiny demos")
    dlg.get_by_role("button", name="Add instance type").click()
    pw(dlg).to_have_count(0)
    pw(page.locator(".toast", has_text="Instance type added")).to_be_visible()
    row = page.locator('#types-table tr[data-type="cpu.tiny"]')
    pw(row).to_contain_text("0.5 vCPU · 512 MiB · no GPU")
    pw(row).to_contain_text("0.02 / hour · Reserved")
    pw(row).to_contain_text("for tiny demos")
    with p.client() as c:
        tiny = next(t for t in c.get("/instance-types") if t["name"] == "cpu.tiny")
    assert (tiny["cpus"], tiny["memory_mb"], tiny["gpus"], tiny["price_per_hour"], tiny["billing"]) == (
        0.5, 512, 0, 0.02, "reserved")

    # offered in the create-service form, with its price and billing under the select
    page.get_by_role("link", name="Inference services", exact=True).first.click()
    page.locator(".page-actions").get_by_role("button", name="Create service").click()
    select = page.get_by_label("Instance type")
    pw(select.locator('option[value="cpu.tiny"]')).to_have_text("cpu.tiny — 0.5 vCPU · 512 MiB · no GPU")
    select.select_option("cpu.tiny")
    pw(page.locator(".type-info")).to_contain_text("Reserved")
    pw(page.locator(".type-info")).to_contain_text("for tiny demos")

    # delete it (with confirmation); the form no longer offers it
    page.get_by_role("link", name="Instance types", exact=True).click()
    row.get_by_role("button", name="Delete").click()
    dlg = _dialog(page)
    pw(dlg.get_by_role("heading", name="Delete instance type cpu.tiny?")).to_be_visible()
    dlg.get_by_role("button", name="Delete").click()
    pw(page.locator(".toast", has_text="Instance type deleted")).to_be_visible()
    pw(row).to_have_count(0)
    pw(page.locator('#types-table tr[data-type="cpu.small"]')).to_be_visible()
    page.get_by_role("link", name="Inference services", exact=True).first.click()
    page.locator(".page-actions").get_by_role("button", name="Create service").click()
    pw(page.get_by_label("Instance type").locator('option[value="cpu.small"]')).to_have_count(1)
    pw(page.get_by_label("Instance type").locator('option[value="cpu.tiny"]')).to_have_count(0)


# ---- Service details -> Edit configuration ----

def test_edit_configuration_rolls_out_the_new_environment(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    # the app takes a few seconds to start, so the rolling update is visible in the page (it polls every 3 s)
    p.create("versioned", env={"VERSION": "1"}, command=f"sleep 5; exec {sys.executable} app.py")
    auth = ArkRequestsAuth(p.profile.access_key, p.profile.secret_key)
    console.login("admin", admin_password(p))
    console.goto("/console/services/versioned")
    title = page.get_by_role("heading", name=re.compile("^versioned"))
    pw(title.locator(".badge.s-ready")).to_be_visible()
    pw(page.locator(".overview .env-list")).to_have_text("VERSION=1")
    endpoint = page.locator(".overview .endpoint code").inner_text()
    r = requests.get(f"{endpoint}/v", auth=auth, verify=p.ca, timeout=30)
    assert r.status_code == 200 and r.json()["version"] == "1", r.text
    old_revision = page.locator("#instances-table tbody tr code").nth(1).inner_text()

    page.get_by_role("button", name="Edit configuration").click()
    dlg = _dialog(page)
    pw(dlg.get_by_role("heading", name="Edit configuration")).to_be_visible()
    pw(dlg.locator(".env-row input").nth(0)).to_have_value("VERSION")
    value = dlg.locator(".env-row input").nth(1)
    pw(value).to_have_value("1")
    value.fill("2")
    dlg.get_by_role("button", name="Save and roll out").click()
    pw(dlg).to_have_count(0)
    pw(page.locator(".toast", has_text="Saved: rolling update started")).to_be_visible()
    pw(page.locator(".overview .env-list")).to_have_text("VERSION=2")

    # the status line follows the rollout: Updating (RollingUpdate) ... then Running again
    pw(title.locator(".badge.s-updating")).to_have_text("Updating", timeout=30_000)
    pw(page.locator(".status-banner")).to_contain_text("RollingUpdate")
    pw(title.locator(".badge.s-ready")).to_have_text("Running", timeout=60_000)
    pw(page.locator(".status-banner")).to_contain_text("Running")
    rows = page.locator("#instances-table tbody tr")
    pw(rows).to_have_count(1)
    pw(rows.locator("code").nth(1)).not_to_have_text(old_revision)
    with p.client() as c:
        events = [e["kind"] for e in c.get("/services/versioned/events")]
    assert "updated" in events, events

    # the gateway serves the new version (its routing table follows within moments)
    deadline = time.monotonic() + 15
    while True:
        r = requests.get(f"{endpoint}/v", auth=auth, verify=p.ca, timeout=30)
        assert r.status_code == 200, r.text
        if r.json()["version"] == "2" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    versions = {requests.get(f"{endpoint}/v/{i}", auth=auth, verify=p.ca, timeout=30).json()["version"]
                for i in range(5)}
    assert r.json()["version"] == "2" and versions == {"2"}, versions


# ---- Delete with typed confirmation ----

def test_delete_needs_the_exact_name_typed(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    p.create("doomed")
    console.login("admin", admin_password(p))
    row = page.locator('#services-table tr[data-service="doomed"]')
    row.get_by_role("link", name="doomed").click()
    pw(page).to_have_url(re.compile(r"/console/services/doomed$"))

    # Cancel keeps it
    page.locator(".page-actions").get_by_role("button", name="Delete").click()
    dlg = _dialog(page)
    pw(dlg.get_by_role("heading", name="Delete doomed?")).to_be_visible()
    go = dlg.get_by_role("button", name="Delete service")
    pw(go).to_be_disabled()
    dlg.get_by_role("button", name="Cancel").click()
    pw(dlg).to_have_count(0)

    page.locator(".page-actions").get_by_role("button", name="Delete").click()
    dlg = _dialog(page)
    pw(dlg).to_contain_text("All 1 instance(s) are drained and removed")
    confirm = dlg.get_by_label("Type doomed to confirm")
    go = dlg.get_by_role("button", name="Delete service")
    for almost in ("doome", "Doomed", "doomed ", " doomed", "doomed2"):
        confirm.fill(almost)
        pw(go).to_be_disabled()
    confirm.press("Enter")  # submitting the form with a wrong name does nothing either
    pw(dlg).to_be_visible()
    with p.client() as c:
        assert c.get("/services/doomed")["status"] == "ready"
    confirm.fill("doomed")
    pw(go).to_be_enabled()
    go.click()
    pw(dlg).to_have_count(0)
    pw(page).to_have_url(re.compile(r"/console/services$"))
    pw(page.locator(".toast", has_text="Deleting doomed")).to_be_visible()
    # the list page starts empty ("Loading…"): wait for real rows before waiting for doomed's to go
    pw(page.locator("#services-table")).not_to_have_attribute("aria-busy", "true")
    pw(row).to_have_count(0, timeout=45_000)  # drained, removed, gone from the auto-refreshing list
    with p.client() as c:
        assert "doomed" not in {s["name"] for s in c.get("/services")}

    # its old details URL says it is gone (a readable page, not a blank one)
    console.goto("/console/services/doomed")
    pw(page.locator(".notfound")).to_contain_text("Service doomed does not exist (any more).")


# ---- A plain user ----

def test_plain_user_sees_no_admin_section_and_admin_urls_are_refused(console: Console,
                                                                      console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    _ensure_user(p, "bob")
    console.login("bob", USER_PASSWORD)
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    nav = page.locator("nav.sidebar")
    pw(nav.get_by_role("link", name="Access keys (AK/SK)")).to_be_visible()
    pw(nav).not_to_contain_text("Administration")
    pw(nav.get_by_role("link", name="Users", exact=True)).to_have_count(0)
    pw(nav.get_by_role("link", name="Instance types", exact=True)).to_have_count(0)
    page.locator(".user-button").click()
    pw(page.locator(".menu-head")).to_contain_text("User")
    page.keyboard.press("Escape")

    for path in ("/console/admin/users", "/console/admin/instance-types", "/console/admin"):
        console.goto(path)
        card = page.locator(".notfound")
        pw(card.get_by_role("heading", name="Administrators only")).to_be_visible()
        pw(card).to_contain_text("Only an administrator may open this page")
        pw(page.locator("#users-table, #types-table")).to_have_count(0)
        pw(nav.get_by_role("link", name="Users", exact=True)).to_have_count(0)
        assert page.url.endswith(path)
    console.goto("/console/no-such-page")  # a page that does not exist says so, not "administrators only"
    pw(page.locator(".notfound").get_by_role("heading", name="Page not found")).to_be_visible()
    # the way back works
    page.locator(".notfound").get_by_role("link", name="Inference services").click()
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    # and the API refuses what the page does not show
    assert page.request.get(console.base + "/api/v1/users").status == 403


# ---- Logout and an expired session ----

def test_after_logout_the_console_shows_the_login_page(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    console.login("admin", admin_password(p))
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    page.locator(".user-button").click()
    page.get_by_role("menuitem", name="Log out").click()
    pw(page).to_have_url(re.compile(r"/console/login$"))
    console.goto("/console/services")
    pw(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fservices$"))
    pw(page.get_by_role("heading", name="Log in")).to_be_visible()
    pw(page.locator(".topbar")).to_have_count(0)
    # a deep link after logout also lands on the login page, and logging in goes back there
    console.goto("/console/settings/keys")
    pw(page).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(admin_password(p))
    page.get_by_role("button", name="Log in").click()
    pw(page).to_have_url(re.compile(r"/console/settings/keys$"))
    pw(page.get_by_role("heading", name="Access keys (AK/SK)")).to_be_visible()


def test_a_session_ended_elsewhere_returns_to_the_login_page(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    _ensure_user(p, "carol")
    console.login("carol", USER_PASSWORD)
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    # the admin sets a new password: carol's sessions end; the list's next refresh notices
    with p.client() as c:
        c.patch("/users/carol", {"password": "carol-new-pass-2"})
    pw(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=15_000)
    pw(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Fservices$"))
    assert page.request.get(console.base + "/api/v1/session").status == 401
    _login_fails(console, "carol", USER_PASSWORD)
    console.goto("/console/services")
    page.get_by_label("Username").fill("carol")
    page.get_by_label("Password").fill("carol-new-pass-2")
    page.get_by_role("button", name="Log in").click()
    pw(page).to_have_url(re.compile(r"/console/services$"))
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    with p.client() as c:
        c.delete("/users/carol")
