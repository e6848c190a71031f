"""The console's Hosts page (admins), in real headless Chromium against the whole platform (`arkserve up`): this
host's capacity as the reconciler recorded it, a GPU instance type that cannot be placed here explained on the
service, and a fractional instance type added through the form."""

from __future__ import annotations

import re
import sys
from typing import Any

from tests.console.conftest import Console, admin_password
from tests.e2e.conftest import Platform


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_admin_sees_hosts_and_adds_a_shared_gpu_type(console: Console, console_platform: Platform) -> None:
    page, p, pw = console.page, console_platform, _expect()
    with p.client() as c:
        [host] = c.get("/hosts")
    console.login("admin", admin_password(p))
    page.get_by_role("link", name="Hosts", exact=True).click()
    pw(page).to_have_url(re.compile(r"/console/admin/hosts$"))
    card = page.locator(f'.host-card[data-host="{host["name"]}"]')
    pw(card).to_contain_text(host["name"])
    pw(card).to_contain_text(f"of {host['capacity']['cpus']:g}")  # vCPU: allocated of capacity
    if not host["gpus"]:
        pw(card.locator(".no-gpu")).to_contain_text("No GPU on this host")
    else:
        pw(card.locator("table.gpu-table tbody tr")).to_have_count(len(host["gpus"]))

    page.get_by_role("link", name="Instance types", exact=True).click()
    page.get_by_role("button", name="Add instance type").click()
    dlg = page.locator("dialog[open]")
    dlg.get_by_label("Name").fill("gpu.half")
    dlg.get_by_label("Or a share of one GPU").fill("0.5")
    dlg.get_by_role("button", name="Add instance type").click()
    pw(dlg).to_have_count(0)
    pw(page.locator('#types-table tr[data-type="gpu.half"]')).to_contain_text("0.5 of a GPU")
    with p.client() as c:
        assert next(t for t in c.get("/instance-types") if t["name"] == "gpu.half")["gpu_fraction"] == 0.5
        if host["gpus"]:
            return
        # this host has no GPU: a service of the shared type waits, and its page says why
        c.post("/services", {"name": "wants-gpu", "image": str(p.app_dir), "port": 8000, "replicas": 1,
                             "command": f"{sys.executable} app.py", "instance_type": "gpu.half"})
    console.goto("/console/services/wants-gpu")
    pw(page.locator("main")).to_contain_text("needs 0.5 GPUs; this host has no GPU", timeout=20_000)
    with p.client() as c:
        c.delete("/services/wants-gpu")
