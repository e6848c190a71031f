"""The web console in real headless Chromium against the whole platform (`arkserve up`).

The walkthrough does what a user does: log in, create a service with the form, watch it become ready,
scale it with the pencil, call it with signed requests, read its logs, see the requests spread over both
instances, look at the metrics, create and reveal an access key, and switch the language to Chinese.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

import requests

from arkserve.sdk import ArkRequestsAuth
from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    """Playwright's ``expect`` (imported late: without Playwright the fixtures skip or fail with the reason)."""
    from playwright.sync_api import expect

    return expect


def test_failed_login_shows_an_error(console: Console, console_platform: Platform) -> None:
    page = console.page
    console.goto("/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.locator(".login-card .form-error")
    _expect()(alert).to_have_text("Wrong username or password.")
    assert page.url.endswith("/console/login")
    page.get_by_label("Password").fill(admin_password(console_platform))
    page.get_by_role("button", name="Log in").click()
    _expect()(page.get_by_role("heading", name="Inference services")).to_be_visible()


def test_form_validation_shows_messages_next_to_the_fields(console: Console, console_platform: Platform) -> None:
    page = console.page
    pw = _expect()
    console.login("admin", admin_password(console_platform))
    page.locator(".page-actions").get_by_role("button", name="Create service").click()
    pw(page.get_by_role("heading", name="Create inference service")).to_be_visible()
    # client side: a name that is no DNS label and a port out of range, shown under each field
    page.locator("input[name=name]").fill("Bad_Name")
    page.locator("input[name=port]").fill("70000")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page.locator('.field[data-field="name"] .field-error')).to_contain_text("lower-case letters")
    pw(page.locator('.field[data-field="port"] .field-error')).to_have_text("Enter a port between 1 and 65535.")
    pw(page.locator("input[name=name]")).to_be_focused()
    # server side: the API rejects the health path; its message appears next to that field (422 `field`)
    page.locator("input[name=name]").fill("checked")
    page.locator("input[name=port]").fill("8000")
    page.locator("input[name=image]").fill(str(console_platform.app_dir))
    page.locator("input[name=command]").fill("python3 app.py")
    page.locator("input[name=health_path]").fill("healthz")
    page.get_by_role("button", name="Create", exact=True).click()
    err = page.locator('.field[data-field="health_path"] .field-error')
    pw(err).to_contain_text("must start with '/'")
    pw(page.locator("input[name=health_path]")).to_have_attribute("aria-invalid", "true")
    pw(page.locator('.field[data-field="name"] .field-error')).to_be_empty()
    with console_platform.client() as c:
        assert [s["name"] for s in c.get("/services")] == []


def test_translation_tables_have_the_same_keys(console: Console) -> None:
    console.goto("/console/login")
    diff = console.page.evaluate("""async () => {
        const en = (await import('/static/lang-en.js')).default;
        const zh = (await import('/static/lang-zh.js')).default;
        // an API error's code may have a Chinese text only: the English console shows the API's own message
        return {onlyEn: Object.keys(en).filter(k => !(k in zh)),
                onlyZh: Object.keys(zh).filter(k => !(k in en) && !k.startsWith("error.")),
                emptyZh: Object.keys(zh).filter(k => !zh[k])};
    }""")
    assert diff == {"onlyEn": [], "onlyZh": [], "emptyZh": []}


def _row(page: Any, service: str) -> Any:
    return page.locator(f'#services-table tr[data-service="{service}"]')


def test_walkthrough(console: Console, console_platform: Platform) -> None:
    page, p = console.page, console_platform
    pw = _expect()
    password = admin_password(p)

    # log in through a deep link: the login page sends us back to where we wanted to go
    console.goto("/console/services")
    pw(page).to_have_url(re.compile(r"/console/login"))
    console.login("admin", password)
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()
    pw(page.locator("#services-table")).to_contain_text("No inference services yet.")

    # create through the form
    page.locator(".page-actions").get_by_role("button", name="Create service").click()
    page.get_by_label("Service name").fill("hello")
    page.get_by_label("Instance type").select_option("cpu.small")
    pw(page.locator(".type-info")).to_contain_text("Pay as you go")
    page.get_by_label("Image").fill(str(p.app_dir))
    page.get_by_label("Port").fill("8000")
    page.get_by_label("Start command").fill(f"{sys.executable} app.py")
    page.get_by_label("Health check path").fill("/healthz")
    page.get_by_role("button", name="Add variable").click()
    page.locator(".env-row input").nth(0).fill("GREETING")
    page.locator(".env-row input").nth(1).fill("hello")
    page.get_by_label("Instance count").fill("1")
    console.shot("create")
    page.locator("details.advanced summary").click()
    auth_switch = page.get_by_role("switch")
    pw(auth_switch).to_be_checked()
    auth_switch.uncheck(force=True)
    pw(page.locator(".advanced .banner.warn")).to_contain_text("reachable by anyone")
    auth_switch.check(force=True)
    pw(page.locator(".advanced .banner.warn")).to_be_hidden()
    page.get_by_role("button", name="Create", exact=True).click()

    # the details page opens; back in the list the service becomes ready by itself (auto-refresh)
    pw(page).to_have_url(re.compile(r"/console/services/hello$"))
    page.get_by_role("link", name="Inference services").first.click()
    row = _row(page, "hello")
    pw(row.locator(".badge.s-ready")).to_be_visible(timeout=60_000)
    pw(row.locator(".count")).to_have_text("1/1")
    pw(row).to_contain_text("https://127.0.0.1:")
    pw(row).to_contain_text("On")
    page.get_by_placeholder("Search by name").fill("nothing-like-it")
    pw(page.locator("#services-table")).to_contain_text("No service matches")
    page.get_by_placeholder("Search by name").fill("hel")
    pw(row).to_be_visible()

    # details -> scale to 2 with the pencil
    row.get_by_role("link", name="Details").click()
    pw(page.get_by_role("heading", name=re.compile("^hello"))).to_be_visible()
    pw(page.locator("#instances-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Change instance count").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Target instance count").fill("2")
    dialog.get_by_role("button", name="Apply").click()
    pw(dialog).to_have_count(0)
    pw(page.locator('#instances-table tbody tr[data-state="ready"]')).to_have_count(2, timeout=60_000)
    pw(page.locator(".count-big")).to_have_text("2/2 ready")
    endpoint = page.locator(".overview .endpoint code").inner_text()
    # the local runtime hands each instance its own $PORT: the declared 8000 is not shown as if used
    pw(page.locator(".overview .port-local")).to_have_text("$PORT (a free port per instance)")
    pw(page.locator(".example pre")).to_contain_text("ArkRequestsAuth")
    replicas = page.locator("#instances-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.replica)")
    assert len(set(replicas)) == 2
    console.shot("details")

    # ~20 signed requests from a program, through the gateway
    prof = p.profile
    auth = ArkRequestsAuth(prof.access_key, prof.secret_key)
    served = set()
    for i in range(20):
        r = requests.get(f"{endpoint}/hello/{i}", auth=auth, verify=p.ca, timeout=30)
        assert r.status_code == 200, r.text
        served.add(r.json()["replica"])
    assert served == set(replicas)

    # logs: lines from both instances, live; filter; download
    page.get_by_role("tab", name="Logs").click()
    pw(page).to_have_url(re.compile(r"/console/services/hello/logs$"))
    for rid in replicas:
        pw(page.locator(f'.logline[data-replica="{rid}"]', has_text="GET /hello/").first).to_be_visible()
    pw(page.locator(".live-state")).to_have_text("● live")
    page.get_by_placeholder("Filter lines").fill("/hello/7")
    pw(page.locator(".logline")).to_have_count(1)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download").click()
    assert "/hello/7" in dl.value.path().read_text()
    page.get_by_placeholder("Filter lines").fill("")
    requests.get(f"{endpoint}/live-line", auth=auth, verify=p.ca, timeout=30)
    pw(page.locator(".logline", has_text="GET /live-line")).to_have_count(1)
    page.get_by_label("Instance", exact=True).select_option(replicas[0])
    pw(page.locator(".logline").first).to_be_visible()
    assert set(page.locator(".logline").evaluate_all("ls => ls.map(l => l.dataset.replica)")) == {replicas[0]}
    page.get_by_label("Instance", exact=True).select_option("")
    pw(page.locator(f'.logline[data-replica="{replicas[1]}"]').first).to_be_visible()
    console.shot("logs", scroll_to=".tabs")

    # requests: spread over both instances (the gateway's request log is written in batches)
    page.get_by_role("tab", name="Requests").click()
    spread = page.locator("#replica-spread .spread-row")
    pw(spread).to_have_count(2, timeout=20_000)
    deadline = time.monotonic() + 20
    while True:
        counts = spread.evaluate_all("rows => rows.map(r => [r.dataset.replica, Number(r.dataset.count)])")
        if sum(n for _, n in counts) >= 21 or time.monotonic() > deadline:
            break
        page.wait_for_timeout(500)
    assert {rid for rid, _ in counts} == set(replicas)
    assert all(n > 0 for _, n in counts) and sum(n for _, n in counts) == 21, counts
    pw(page.locator("#requests-table tbody tr").first).to_contain_text("200")
    console.shot("requests", scroll_to=".tabs")

    # metrics: charts drawn from the metrics endpoint
    page.get_by_role("tab", name="Monitoring").click()
    pw(page.locator(".stat").first).to_contain_text("2/2")
    pw(page.locator(".chart")).to_have_count(5)  # requests, latency, errors, replicas, requests in flight
    pw(page.locator(".card", has_text="Requests in flight").locator(".chart")).to_have_count(1)
    pw(page.locator(".stat").nth(1)).to_contain_text("21")
    console.shot("metrics", scroll_to=".tabs")

    # events
    page.get_by_role("tab", name="Events").click()
    pw(page.locator("#events-table")).to_contain_text("scaled 1 -> 2")

    # the list page with the scaled service (and a public one being created)
    with p.client() as c:
        c.post("/services", {"name": "echo-public", "image": str(p.app_dir), "port": 8000, "auth": False,
                             "command": f"{sys.executable} app.py", "instance_type": "cpu.medium"})
    page.get_by_role("link", name="Inference services").first.click()
    pw(_row(page, "echo-public")).to_contain_text("Off")
    pw(_row(page, "hello").locator(".count")).to_have_text("2/2")
    console.shot("services")

    # settings: create an access key (SK shown once), reveal it again with the password
    page.locator(".user-button").click()
    page.get_by_role("menuitem", name="Settings").click()
    pw(page.get_by_role("heading", name="Access keys (AK/SK)")).to_be_visible()
    page.get_by_role("button", name="Create access key").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Description").fill("console test")
    dialog.get_by_role("button", name="Create access key").click()
    ak = dialog.locator("#secret-ak").inner_text()
    sk = dialog.locator("#secret-sk").inner_text()
    assert len(ak) > 10 and len(sk) > 30
    dialog.get_by_role("button", name="I have saved it").click()
    key_row = page.locator(f'#keys-table tr[data-ak="{ak}"]')
    pw(key_row).to_contain_text("console test")
    pw(page.locator("dialog")).to_have_count(0)
    assert sk not in page.content()  # shown once, then gone from the page
    key_row.get_by_role("button", name="Show").click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_label("Password").fill("wrong-password")
    dialog.get_by_role("button", name="Show").click()
    pw(dialog.locator(".field-error")).to_have_text("The password is wrong.")
    dialog.get_by_label("Password").fill(password)
    dialog.get_by_role("button", name="Show").click()
    pw(dialog.locator("#secret-sk")).to_have_text(sk)
    dialog.get_by_role("button", name="Close").last.click()
    # the new key really signs
    r = requests.get(f"{endpoint}/with-new-key", auth=ArkRequestsAuth(ak, sk), verify=p.ca, timeout=30)
    assert r.status_code == 200
    key_row.get_by_role("button", name="Disable").click()
    page.locator("dialog[open]").get_by_role("button", name="Disable").click()
    pw(key_row.locator(".badge.off")).to_be_visible()
    console.shot("keys")

    # language: the same page in Chinese, remembered across reloads
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    pw(page.get_by_role("heading", name="访问密钥 (AK/SK)")).to_be_visible()
    pw(page.locator("html")).to_have_attribute("lang", "zh-CN")
    pw(key_row).to_contain_text("已停用")
    page.reload()
    pw(page.get_by_role("heading", name="访问密钥 (AK/SK)")).to_be_visible()
    page.get_by_role("link", name="推理服务").first.click()
    pw(_row(page, "hello").locator(".badge.s-ready")).to_have_text("运行中")
    console.shot("services-zh")
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="English").click()
    pw(page.get_by_role("heading", name="Inference services")).to_be_visible()

    # log out: the API session is gone
    page.locator(".user-button").click()
    page.get_by_role("menuitem", name="Log out").click()
    pw(page).to_have_url(re.compile(r"/console/login"))
    assert page.request.get(console.base + "/api/v1/session").status == 401


def test_list_auto_refresh_keeps_the_scroll_position_and_unchanged_rows(console: Console,
                                                                        console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    names = [f"scroll-{i:02d}" for i in range(30)]
    with p.client() as c:
        for n in names:  # no replicas: cheap, and listed like any other service
            c.post("/services", {"name": n, "image": str(p.app_dir), "port": 8000, "command": "true",
                                 "replicas": 0})
    try:
        page.set_viewport_size({"width": 1280, "height": 600})
        console.login("admin", admin_password(p))
        near_end = page.locator('#services-table tr[data-service="scroll-25"]')
        near_end.scroll_into_view_if_needed()
        pw(near_end).to_be_in_viewport()
        page.mouse.wheel(0, 120)  # and a little further, by hand
        page.wait_for_timeout(300)
        before = page.evaluate("window.scrollY")
        assert before > 200  # really scrolled down the page
        page.evaluate("""() => {
            window.__kept = document.querySelector('#services-table tr[data-service="scroll-24"]'); }""")
        top = near_end.bounding_box()
        assert top is not None
        # something changes on the server: the next refresh must show it without moving the page
        with p.client() as c:
            c.patch("/services/scroll-26", {"instance_type": "cpu.medium"})
        changed = page.locator('#services-table tr[data-service="scroll-26"]')
        pw(changed).to_contain_text("cpu.medium", timeout=10_000)
        assert page.evaluate("window.scrollY") == before
        after = near_end.bounding_box()
        assert after is not None and abs(after["y"] - top["y"]) < 1
        # an unchanged row is the same DOM node (a selection or focus in it survives the refresh)
        assert page.evaluate("window.__kept.isConnected") is True
    finally:
        p.delete_services(names)


def test_services_list_pages_searches_and_refreshes_the_page_in_view(console: Console,
                                                                     console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    names = [f"pg-{i:03d}" for i in range(60)]  # two pages of 50, found by a prefix nothing else has
    with p.client() as c:
        for n in names:
            c.post("/services", {"name": n, "image": str(p.app_dir), "port": 8000, "command": "true", "replicas": 0})
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/services?" in r.url else None)
    rows, note = page.locator("#services-table tbody tr[data-service]"), page.locator(".list-note")
    search = page.get_by_placeholder("Search by name")
    try:
        console.login("admin", admin_password(p))
        with page.expect_response(lambda r: "prefix=pg-" in r.url):
            search.fill("pg-")
        pw(note).to_have_text("1\N{EN DASH}50 of 60")
        pw(rows).to_have_count(50)
        pw(rows.first).to_have_attribute("data-service", "pg-000")
        prev, more = page.get_by_role("button", name="Previous"), page.get_by_role("button", name="Next")
        pw(prev).to_be_disabled()
        more.click()
        pw(note).to_have_text("51\N{EN DASH}60 of 60")
        pw(rows).to_have_count(10)
        pw(rows.first).to_have_attribute("data-service", "pg-050")
        pw(more).to_be_disabled()
        # the auto-refresh reloads this page (its cursor, 50 rows), and a change on it shows up
        asked.clear()
        with p.client() as c:
            c.patch("/services/pg-055", {"instance_type": "cpu.medium"})
        pw(page.locator('#services-table tr[data-service="pg-055"]')).to_contain_text("cpu.medium", timeout=10_000)
        assert asked and all("limit=50" in u and "cursor=" in u and "prefix=pg-" in u for u in asked), asked
        prev.click()
        pw(note).to_have_text("1\N{EN DASH}50 of 60")
        pw(rows.last).to_have_attribute("data-service", "pg-049")
        page.get_by_label("Status").select_option("failed")  # filtered on the server: none of them failed
        pw(page.locator("#services-table")).to_contain_text("No service matches")
        pw(note).to_have_text("")
        page.get_by_label("Status").select_option("")
        search.fill("pg-05")  # a new search starts at its first page
        pw(note).to_have_text("1\N{EN DASH}10 of 10")
        pw(rows.first).to_have_attribute("data-service", "pg-050")
    finally:
        p.delete_services(names, timeout=120)
