"""The model market in real headless Chromium against the whole platform (`arkserve up`): cards, search and
filters, a model's page (README, versions, files, digest), "Use in a service" opening Create with the mount
filled in, the service running with the model mounted, a bad disk mount shown next to its field, and the
market page in Chinese."""

from __future__ import annotations

import re
import sys
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform
from tests.storage.archives import tar_of

README = b"# Flowers ResNet34\n\nClassifies **five** flowers.\n\n- daisy\n- tulips\n\n```\npython3 infer.py\n```\n"


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _publish(p: Platform) -> str:
    with p.client() as c:
        made = c.upload("PUT", "/models/flowers-resnet34/versions/1/archive",
                        iter([tar_of({"weights.txt": b"resnet34 weights", "README.md": README})]),
                        params={"task": "image-classification", "framework": "pytorch", "license": "Apache-2.0",
                                "public": "true"}, content_type="application/x-tar")
        c.upload("PUT", "/models/bert-tiny/versions/1/archive", iter([tar_of({"vocab.txt": b"[CLS]"})]),
                 params={"task": "text-classification", "framework": "onnx", "description": "A tiny BERT."},
                 content_type="application/x-tar")
    return str(made["versions"][0]["digest"])


def test_market_search_model_page_and_use_in_a_service(console: Console, console_platform: Platform) -> None:
    page, p = console.page, console_platform
    pw = _expect()
    digest = _publish(p)
    console.login("admin", admin_password(p))
    page.get_by_role("link", name="Model market").click()
    cards = page.locator("#model-cards .model-card")
    pw(cards).to_have_count(2)
    pw(page.locator('[data-model="flowers-resnet34"]')).to_contain_text("Classifies five flowers.")
    pw(page.locator('[data-model="flowers-resnet34"]')).to_contain_text("Public")
    console.shot("model-market")
    page.get_by_placeholder("Search models").fill("tiny")
    pw(cards).to_have_count(1)
    pw(cards.first).to_contain_text("bert-tiny")
    page.get_by_placeholder("Search models").fill("")
    page.get_by_label("Task").select_option("image-classification")
    pw(cards).to_have_count(1)
    page.get_by_label("Task").select_option(index=0)
    page.get_by_label("Framework").select_option("onnx")
    pw(cards).to_have_count(1)
    pw(cards.first).to_contain_text("bert-tiny")
    page.get_by_label("Framework").select_option(index=0)
    pw(cards).to_have_count(2)

    # the model's page: README rendered (no raw Markdown), versions, files, digest
    page.get_by_role("link", name="flowers-resnet34").click()
    pw(page).to_have_url(re.compile(r"/console/models/flowers-resnet34$"))
    pw(page.locator(".model-readme h3")).to_have_text("Flowers ResNet34")
    pw(page.locator(".model-readme strong")).to_have_text("five")
    pw(page.locator(".model-readme li")).to_have_count(2)
    pw(page.locator("#versions-table tbody tr")).to_have_count(1)
    pw(page.locator("#files-table")).to_contain_text("weights.txt")
    pw(page.locator(".digest-line")).to_contain_text(digest)
    pw(page.locator("main")).not_to_contain_text("null")
    console.shot("model-page")

    # "Use in a service": Create opens with the model and mount path filled in
    page.get_by_role("button", name="Use in a service").click()
    pw(page).to_have_url(re.compile(r"/console/services/new\?model=flowers-resnet34%401$"))
    pw(page.get_by_label("Model source")).to_have_value("market")
    pw(page.get_by_label("Model and version")).to_have_value("flowers-resnet34@1")
    pw(page.get_by_label("Mount path")).to_have_value("/ark/models")
    page.get_by_label("Service name").fill("clf")
    page.get_by_label("Image").fill(str(p.app_dir))
    page.get_by_label("Port").fill("8000")
    page.get_by_label("Start command").fill(f"{sys.executable} app.py")
    page.get_by_label("Health check path").fill("/healthz")
    console.shot("create-with-model", scroll_to=".create-form .form-section:nth-of-type(3)")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page).to_have_url(re.compile(r"/console/services/clf$"))
    mounts = page.locator(".mount-list")
    pw(mounts).to_contain_text("/ark/models")
    pw(mounts).to_contain_text("flowers-resnet34@1")
    pw(mounts).to_contain_text(digest)
    pw(mounts).to_contain_text("read-only")
    p.wait_ready("clf", 1, timeout=90)  # the replica started with the model mounted from the node cache
    with p.client() as c:
        assert c.get("/models/flowers-resnet34")["mounted_by"] == ["clf"]

    # a disk folder that does not exist: the API's reason next to the field, nothing created
    console.goto("/console/services/new")
    page.get_by_label("Service name").fill("clf2")
    page.get_by_label("Image").fill(str(p.app_dir))
    page.get_by_label("Port").fill("8000")
    page.get_by_label("Start command").fill(f"{sys.executable} app.py")
    page.get_by_label("Model source").select_option("disk")
    page.get_by_label("Folder on your network disk").fill("/no/such/folder")
    page.get_by_label("Mount path").fill("/data")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page.locator('[data-field="mounts.0.disk"] .field-error')).to_contain_text("does not exist")
    page.get_by_label("Mount path").fill("relative")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page.locator('[data-field="mounts.0.mount_path"] .field-error')).to_contain_text("absolute path")
    with p.client() as c:
        assert [s["name"] for s in c.get("/services")] == ["clf"]

    # the market in Chinese
    page.locator(".user-button").click()
    page.get_by_role("menuitemradio", name="简体中文").click()
    console.goto("/console/models")
    pw(page.get_by_role("heading", name="模型市场")).to_be_visible()
    pw(page.locator('[data-model="flowers-resnet34"]')).to_contain_text("公开")
    console.shot("model-market-zh")
    p.delete_all_services()


def test_create_with_several_mounts(console: Console, console_platform: Platform) -> None:
    """The Create form's Model section takes a market model and further mounts (a read-only and a writable disk
    folder); removing a row renumbers the rest, and the API's reason for mount 2 lands next to mount 2's path."""
    page, p = console.page, console_platform
    pw = _expect()
    with p.client() as c:
        if not any(m["name"] == "flowers-resnet34" for m in c.get("/models")):
            _publish(p)
        for folder in ("datasets/flowers", "out"):
            c.post("/disk/mkdir", {"path": folder})
    console.login("admin", admin_password(p))
    console.goto("/console/services/new")
    page.get_by_label("Service name").fill("multi")
    page.get_by_label("Image").fill(str(p.app_dir))
    page.get_by_label("Start command").fill(f"{sys.executable} app.py")
    add = page.get_by_role("button", name="Add a mount")
    pw(add).to_be_hidden()  # the model is in the image: nothing to mount
    page.get_by_label("Model source", exact=True).select_option("market")
    page.get_by_label("Model and version", exact=True).select_option("flowers-resnet34@1")
    add.click()
    add.click()
    page.get_by_label("Mount 2: Model source").select_option("disk")
    page.get_by_label("Mount 2: Folder on your network disk").fill("/nowhere")
    page.get_by_role("button", name="Remove mount 2").click()  # mount 3 becomes mount 2
    pw(page.locator(".mount-row")).to_have_count(2)
    pw(page.get_by_label("Mount 2: Model source")).to_have_value("market")
    page.get_by_label("Mount 2: Model source").select_option("disk")
    page.get_by_label("Mount 2: Folder on your network disk").fill("/datasets/flowers")
    page.get_by_label("Mount 2: Mount path").fill("/ark/models")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page.locator('[data-field="mounts.1.mount_path"] .field-error')).to_contain_text("collides")
    page.get_by_label("Mount 2: Mount path").fill("/data")
    add.click()
    page.get_by_label("Mount 3: Model source").select_option("disk")
    page.get_by_label("Mount 3: Folder on your network disk").fill("/out")
    page.get_by_label("Mount 3: Writable").check()
    page.get_by_label("Mount 3: Mount path").fill("/out")
    console.shot("create-with-mounts", scroll_to=".mounts-editor")
    page.get_by_role("button", name="Create", exact=True).click()
    pw(page).to_have_url(re.compile(r"/console/services/multi$"))
    pw(page.locator(".mount-list")).to_contain_text("/datasets/flowers")
    with p.client() as c:
        mounts = [{k: m[k] for k in ("source", "ref", "mount_path", "read_only")}
                  for m in c.get("/services/multi")["spec"]["mounts"]]
    assert mounts == [
        {"source": "model", "ref": "flowers-resnet34@1", "mount_path": "/ark/models", "read_only": True},
        {"source": "disk", "ref": "/datasets/flowers", "mount_path": "/data", "read_only": True},
        {"source": "disk", "ref": "/out", "mount_path": "/out", "read_only": False}]
    p.delete_all_services()


def test_market_pages_and_searches_on_the_server_and_refreshes_the_page_in_view(console: Console,
                                                                                 console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    names = [f"pm-{i:02d}" for i in range(30)]  # two pages of 24, found by a search nothing else matches
    with p.client() as c:
        for n in names:
            task = "last-one" if n == "pm-29" else "paging"  # a task only a model on the second page has
            c.upload("PUT", f"/models/{n}/versions/1/archive", iter([tar_of({"w.bin": n.encode()})]),
                     params={"task": task}, content_type="application/x-tar")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/models?" in r.url else None)
    cards, note = page.locator("#model-cards .model-card"), page.locator(".list-note")
    console.login("admin", admin_password(p))
    console.goto("/console/models")
    with page.expect_response(lambda r: "q=pm-" in r.url):
        page.get_by_placeholder("Search models").fill("pm-")
    pw(note).to_have_text("1\N{EN DASH}24 of 30")
    pw(cards).to_have_count(24)
    pw(cards.first).to_have_attribute("data-model", "pm-00")
    prev, more = page.get_by_role("button", name="Previous"), page.get_by_role("button", name="Next")
    pw(prev).to_be_disabled()
    more.click()
    pw(note).to_have_text("25\N{EN DASH}30 of 30")
    pw(cards).to_have_count(6)
    pw(cards.first).to_have_attribute("data-model", "pm-24")
    pw(more).to_be_disabled()
    # the refresh reloads this page (its cursor, 24 rows), and a change on it shows up
    asked.clear()
    with p.client() as c:
        c.upload("PUT", "/models/pm-27/versions/2/archive", iter([tar_of({"w.bin": b"v2"})]),
                 content_type="application/x-tar")
    pw(page.locator('[data-model="pm-27"]')).to_contain_text("v2", timeout=15_000)
    assert asked and all("limit=24" in u and "cursor=" in u and "q=pm-" in u for u in asked), asked
    prev.click()
    pw(note).to_have_text("1\N{EN DASH}24 of 30")
    # the task menu offers every task on the server, not only this page's; a filter starts at its first page
    page.get_by_label("Task").select_option("last-one")
    pw(cards).to_have_count(1)
    pw(cards.first).to_have_attribute("data-model", "pm-29")
    pw(note).to_have_text("1\N{EN DASH}1 of 1")
    page.get_by_label("Task").select_option(index=0)
    page.get_by_placeholder("Search models").fill("pm-nothing")
    pw(page.locator("#model-cards")).to_contain_text("No model matches.")
    pw(note).to_have_text("")


def test_a_search_that_fires_after_next_keeps_the_page_in_view(console: Console, console_platform: Platform) -> None:
    """A debounced search that fires after a click on Next, with the filters of the page in view (typed and typed
    back), reloads that page: it does not throw the list back to its first page. (A CI run saw the market's
    refresh stuck on page 1 after Next: the search typed just before was still due.) The page's timers run
    only when the test advances them, so the search is due exactly across the click."""
    page, p, pw = console.page, console_platform, _expect()
    with p.client() as c:
        for i in range(30):
            c.upload("PUT", f"/models/pq-{i:02d}/versions/1/archive", iter([tar_of({"w.bin": b"x"})]),
                     content_type="application/x-tar")
    console.login("admin", admin_password(p))
    page.clock.install()
    console.goto("/console/models")
    search, note = page.get_by_placeholder("Search models"), page.locator(".list-note")
    search.fill("pq-")
    with page.expect_response(lambda r: "q=pq-" in r.url):
        page.clock.run_for(300)
    pw(note).to_have_text("1\N{EN DASH}24 of 30")
    search.fill("pq-0")
    search.fill("pq-")  # the same filters as the page in view, and a search due in 250 ms
    with page.expect_response(lambda r: "cursor=" in r.url):
        page.get_by_role("button", name="Next").click()
    pw(note).to_have_text("25\N{EN DASH}30 of 30")
    with page.expect_request(lambda r: "/api/v1/models?" in r.url) as due:
        page.clock.run_for(300)
    assert "cursor=" in due.value.url, f"the due search loaded the first page: {due.value.url}"
    pw(note).to_have_text("25\N{EN DASH}30 of 30")
    pw(page.locator("#model-cards .model-card").first).to_have_attribute("data-model", "pq-24")
