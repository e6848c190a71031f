"""Console fixes in real headless Chromium against the whole platform (`arkserve up`): a mount's API error shows at
its field without the API's ``field: `` prefix; an upload or a rename onto an existing disk file offers Replace,
which asks first (Cancel keeps the file there as it was); and the Balances and quotas page loads many users with
a bounded number of API requests (one page of ``/billing/accounts``, not two requests per user)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_a_mount_error_shows_at_its_field_without_the_prefix(console: Console, console_platform: Platform) -> None:
    pw, page, p = _expect(), console.page, console_platform
    console.login("admin", admin_password(p))
    console.goto("/console/services/new")
    page.get_by_label("Service name").fill("mtest")
    page.get_by_label("Image").fill(str(p.app_dir))
    page.get_by_label("Port").fill("8000")
    page.get_by_label("Start command").fill(f"{sys.executable} app.py")
    page.get_by_label("Model source").select_option("disk")
    page.get_by_label("Folder on your network disk").fill("/nope")
    page.get_by_label("Mount path").fill("/data")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page.locator('[data-field="mounts.0.disk"] .field-error')).to_have_text(
        "/nope does not exist on admin's network disk")
    pw(page.locator(".form-error")).to_be_hidden()


def _row(page: Any, name: str) -> Any:
    return page.locator(f'#disk-table tr[data-name="{name}"]')


def test_upload_and_rename_onto_an_existing_file_offer_replace(console: Console, console_platform: Platform,
                                                               tmp_path: Path) -> None:
    pw, page = _expect(), console.page
    root = console_platform.data / "disks" / "admin"
    console.login("admin", admin_password(console_platform))
    console.goto("/console/disk")
    first, second = tmp_path / "one" / "a.txt", tmp_path / "two" / "a.txt"
    for f, text in ((first, "first"), (second, "second")):
        f.parent.mkdir()
        f.write_text(text)
    items = page.locator('#disk-uploads li[data-name="a.txt"]')
    page.locator("#disk-file-input").set_input_files(str(first))
    pw(items.nth(0).locator(".upload-status")).to_have_text("Uploaded")
    pw(_row(page, "a.txt")).to_be_visible()

    # the same name again: it says so and offers Replace; Cancel in the question keeps the file as it was
    page.locator("#disk-file-input").set_input_files(str(second))
    taken = items.nth(1)
    pw(taken.locator(".upload-status")).to_have_text("a.txt exists already in this folder.")
    taken.get_by_role("button", name="Replace: a.txt").click()
    pw(page.locator("dialog[open]")).to_contain_text("Replace it?")
    page.locator("dialog[open]").get_by_role("button", name="Cancel").click()
    pw(page.locator("dialog[open]")).to_have_count(0)
    assert (root / "a.txt").read_text() == "first"
    pw(taken.get_by_role("button", name="Replace: a.txt")).to_be_visible()  # still on offer

    taken.get_by_role("button", name="Replace: a.txt").click()
    page.locator("dialog[open]").get_by_role("button", name="Replace").click()
    pw(taken.locator(".upload-status")).to_have_text("Uploaded")
    pw(taken.get_by_role("button", name="Replace: a.txt")).to_have_count(0)
    assert (root / "a.txt").read_text() == "second"

    # rename onto an existing file: asks; Cancel keeps both, Replace moves it over the other
    (root / "b.txt").write_text("bee")
    page.reload()
    _row(page, "b.txt").get_by_role("button", name="Rename: b.txt").click()
    page.locator("dialog[open]").get_by_label("New name").fill("a.txt")
    page.locator("dialog[open]").get_by_role("button", name="Rename").click()
    question = page.locator("dialog[open]").last
    pw(question).to_contain_text("a.txt exists already in this folder. Replace it?")
    question.get_by_role("button", name="Cancel").click()
    pw(page.locator("dialog[open]")).to_have_count(1)  # back at the rename dialog
    assert (root / "a.txt").read_text() == "second" and (root / "b.txt").read_text() == "bee"
    page.locator("dialog[open]").get_by_role("button", name="Rename").click()
    page.locator("dialog[open]").last.get_by_role("button", name="Replace").click()
    pw(page.locator("dialog[open]")).to_have_count(0)
    pw(_row(page, "b.txt")).to_have_count(0)
    assert (root / "a.txt").read_text() == "bee" and not (root / "b.txt").exists()


def test_balances_and_quotas_load_with_a_bounded_number_of_requests(console: Console,
                                                                      console_platform: Platform) -> None:
    pw, page, p = _expect(), console.page, console_platform
    with p.client() as c:
        for i in range(30):
            c.post("/users", {"username": f"acct{i:02d}", "password": "acct-password-123"})
        c.post("/billing/topup", {"username": "acct07", "amount": 12.5})
        c.request("PUT", "/quotas/acct07", json={"max_replicas": 3})
        users = len(c.get("/users"))
    console.login("admin", admin_password(p))
    api: list[str] = []
    page.on("request", lambda r: api.append(r.url) if "/api/v1/" in r.url else None)
    console.goto("/console/admin/billing")
    pw(page.locator("#billing-accounts tbody tr[data-user]")).to_have_count(users)
    row = page.locator('#billing-accounts tr[data-user="acct07"]')
    pw(row).to_contain_text("12.50 CNY")
    pw(row).to_contain_text("0/3")
    assert len(api) <= 3, api
    pw(page.locator(".list-note")).to_have_text(f"1\u2013{users} of {users}")
    billing = [u for u in api if "/billing/" in u or "/quotas/" in u]
    assert len(billing) == 1 and "/api/v1/billing/accounts?" in billing[0], api

    # a top-up from the page reloads its page of accounts
    api.clear()
    row.get_by_role("button", name="Top up").click()
    page.locator("dialog[open]").get_by_label("Amount").fill("1")
    page.locator("dialog[open]").get_by_role("button", name="Top up").click()
    pw(row).to_contain_text("13.50 CNY")
    assert len(api) <= 3, api
