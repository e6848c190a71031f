"""The Network disk page in real headless Chromium against the whole platform (`arkserve up`): make a
folder, browse into it (breadcrumbs), upload with the file picker and by drag-and-drop with per-file
progress, cancel an upload, download, rename, delete with confirmation, the usage bar, and the page in
Chinese. What the browser did is checked on the disk itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _row(page: Any, name: str) -> Any:
    return page.locator(f'#disk-table tr[data-name="{name}"]')


def test_network_disk_page(console: Console, console_platform: Platform, tmp_path: Path) -> None:
    pw, page = _expect(), console.page
    root = console_platform.data / "disks" / "admin"
    console.login("admin", admin_password(console_platform))
    page.get_by_role("link", name="Network disk").click()
    pw(page.get_by_role("heading", name="Network disk")).to_be_visible()
    pw(page.locator("#disk-usage")).to_contain_text("of 100.0 GiB used")

    # a folder, then into it
    page.get_by_role("button", name="New folder").click()
    page.locator("dialog[open]").get_by_label("Folder name").fill("datasets")
    page.locator("dialog[open]").get_by_role("button", name="Create").click()
    _row(page, "datasets").get_by_role("link", name="datasets/").click()
    pw(page.locator("#disk-crumbs")).to_have_text("My disk / datasets")
    assert page.url.endswith("/console/disk/datasets")

    # upload with the file picker: progress to 100 %, the row appears, the bytes are on the disk
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(3 * 1024 * 1024))
    page.locator("#disk-file-input").set_input_files(str(weights))
    item = page.locator('#disk-uploads li[data-name="weights.bin"]')
    pw(item.locator(".upload-status")).to_have_text("Uploaded")
    pw(item).to_contain_text("100%")
    pw(_row(page, "weights.bin")).to_contain_text("3.0 MiB")
    assert (root / "datasets" / "weights.bin").read_bytes() == weights.read_bytes()
    pw(page.locator("#disk-usage")).to_contain_text("3.0 MiB of 100.0 GiB used")

    # drag and drop two files onto the list
    page.evaluate("""() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["daisy"], "daisy.txt", {type: "text/plain"}));
        dt.items.add(new File(["{\\"0\\": \\"daisy\\"}"], "class_indices.json", {type: "application/json"}));
        const zone = document.getElementById("disk-drop");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    pw(_row(page, "daisy.txt")).to_be_visible()
    pw(_row(page, "class_indices.json")).to_be_visible()
    assert (root / "datasets" / "daisy.txt").read_text() == "daisy"
    console.shot("disk")

    # cancel an upload in flight (the upload throttled to 256 KiB/s so that it is still running)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 256 * 1024})
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 * 1024 * 1024))
    page.locator("#disk-file-input").set_input_files(str(big))
    big_item = page.locator('#disk-uploads li[data-name="big.bin"]')
    pw(big_item.locator("progress")).to_have_attribute("max", str(len(big.read_bytes())))
    big_item.get_by_role("button", name="Cancel: big.bin").click()
    pw(big_item.locator(".upload-status")).to_have_text("Cancelled")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    staging = console_platform.data / "disks" / ".staging" / "admin" / "parts"
    deadline = page.evaluate("Date.now()") + 15000
    while list(staging.iterdir()) and page.evaluate("Date.now()") < deadline:
        page.wait_for_timeout(100)
    assert list(staging.iterdir()) == [] and not (root / "datasets" / "big.bin").exists()
    page.reload()
    pw(_row(page, "weights.bin")).to_be_visible()
    assert _row(page, "big.bin").count() == 0

    # download
    with page.expect_download() as dl:
        _row(page, "daisy.txt").get_by_role("link", name="Download: daisy.txt").click()
    assert Path(dl.value.path()).read_text() == "daisy"

    # rename
    _row(page, "daisy.txt").get_by_role("button", name="Rename: daisy.txt").click()
    page.locator("dialog[open]").get_by_label("New name").fill("flower.txt")
    page.locator("dialog[open]").get_by_role("button", name="Rename").click()
    pw(_row(page, "flower.txt")).to_be_visible()
    assert (root / "datasets" / "flower.txt").exists() and not (root / "datasets" / "daisy.txt").exists()

    # delete: asks first; cancelling keeps the file
    _row(page, "flower.txt").get_by_role("button", name="Delete: flower.txt").click()
    page.locator("dialog[open]").get_by_role("button", name="Cancel").click()
    assert (root / "datasets" / "flower.txt").exists()
    _row(page, "flower.txt").get_by_role("button", name="Delete: flower.txt").click()
    pw(page.locator("dialog[open]")).to_contain_text("will be deleted for good")
    page.locator("dialog[open]").get_by_role("button", name="Delete").click()
    pw(_row(page, "flower.txt")).to_have_count(0)
    assert not (root / "datasets" / "flower.txt").exists()

    # back to the root through the breadcrumbs; a folder's delete says everything in it goes too
    page.locator("#disk-crumbs").get_by_role("link", name="My disk").click()
    pw(_row(page, "datasets")).to_be_visible()

    # the same page in Chinese
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    pw(page.get_by_role("heading", name="网盘")).to_be_visible()
    pw(page.locator("#disk-usage")).to_contain_text("已用")
    pw(_row(page, "datasets")).to_contain_text("文件夹")
    pw(page.locator(".toast")).to_have_count(0, timeout=10_000)
    console.shot("disk-zh")
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="English").click()
