"""Fixtures for the console tests: the whole platform (`arkserve up`) and real headless Chromium.

Chromium is Debian's (``/usr/bin/chromium``, or ``ARKSERVE_CHROMIUM``) driven by Playwright for Python
without Playwright's own browser download (``.ci/console.sh`` installs both). When either is missing the
tests skip with the reason, unless ``ARKSERVE_REQUIRE_CHROMIUM=1`` (CI), which makes them fail instead.

Every page records console errors and warnings (a missing translation logs one) and uncaught page
errors; a test that produced any fails at teardown. When a test fails, its report says where the page was: its
URL, the API requests still waiting and the last ones answered (status, time taken), and the start of its text.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.e2e.conftest import Platform, running_platform
from tests.required import unavailable

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
IMG_DIR = Path(__file__).parents[2] / "docs" / "img"


def _missing(reason: str) -> NoReturn:
    unavailable("ARKSERVE_REQUIRE_CHROMIUM", f"{reason}; run .ci/console.sh")


@pytest.fixture(scope="module")  # sync Playwright runs an event loop: end it with the module
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    exe = os.environ.get("ARKSERVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        _missing(f"Chromium not found at {exe}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def console_platform(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Platform]:
    """One `arkserve up` per test module (starting it takes seconds); services are removed at the end."""
    with running_platform(tmp_path_factory.mktemp("console")) as p:
        yield p


class Console:
    """A browser page on the console plus what it logged."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.problems: list[str] = []
        self.waiting: dict[Any, float] = {}  # request -> when it was sent
        self.answered: deque[str] = deque(maxlen=25)
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("request", lambda r: self.waiting.__setitem__(r, time.monotonic()))
        page.on("response", lambda r: self._ended(r.request, str(r.status)))
        page.on("requestfailed", lambda r: self._ended(r, f"failed: {r.failure}"))

    def _ended(self, request: Any, outcome: str) -> None:
        sent = self.waiting.pop(request, None)
        if "/static/" in request.url and outcome[:1] in ("2", "3"):
            return  # the page's own files: only the API's answers and failures are kept
        took = f"{time.monotonic() - sent:.2f} s" if sent is not None else "?"
        self.answered.append(f"{request.method} {request.url} -> {outcome} in {took}")

    def describe(self) -> str:
        """Where the page is: for the report of a failed test."""
        now = time.monotonic()
        waiting = [f"{r.method} {r.url} waiting {now - t:.2f} s" for r, t in self.waiting.items()]
        try:
            text = self.page.inner_text("body", timeout=2000)[:1500]
        except Exception as exc:  # a closed or crashed page says so
            text = f"(no text: {exc})"
        return "\n".join([f"url: {self.page.url}", "requests waiting:", *waiting, "last answered:", *self.answered,
                          "text:", text])

    def _on_console(self, msg: Any) -> None:
        # Chromium logs every 4xx/5xx response as "Failed to load resource"; the API answers 401/422 on purpose.
        if msg.type in ("error", "warning") and not msg.text.startswith("Failed to load resource"):
            self.problems.append(f"console {msg.type}: {msg.text}")

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, username: str, password: str) -> None:
        self.goto("/console/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.locator(".topbar").wait_for()

    def shot(self, name: str, scroll_to: str | None = None) -> None:
        """A 1280x800 screenshot for the docs, written to ``ARKSERVE_SCREENSHOT_DIR`` when set and to
        ``docs/img`` when ``ARKSERVE_UPDATE_SCREENSHOTS=1``; otherwise only taken (it still has to work)."""
        if scroll_to:
            self.page.locator(scroll_to).first.evaluate("e => e.scrollIntoView()")
        else:
            self.page.evaluate("window.scrollTo(0, 0)")
        self.page.mouse.move(0, 0)
        self.page.wait_for_timeout(300)  # let the scroll and any transition settle
        data = self.page.screenshot()
        targets = [Path(d) for d in [os.environ.get("ARKSERVE_SCREENSHOT_DIR")] if d]
        if os.environ.get("ARKSERVE_UPDATE_SCREENSHOTS") == "1":
            targets.append(IMG_DIR)
        for d in targets:
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{name}.png").write_bytes(data)


@contextmanager
def open_console(browser: Any, platform: Platform) -> Iterator[Console]:
    """A fresh browser context (no cookies, no storage) on the console: a second person at another browser.
    Closed on exit; what it logged fails the test like the ``console`` fixture's page does."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="Europe/Berlin",
                                  accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        c = Console(page, f"http://127.0.0.1:{platform.api_port}")
        yield c
    finally:
        context.close()
    assert not c.problems, "\n".join(c.problems)


@pytest.fixture
def console(request: pytest.FixtureRequest, browser: Any, console_platform: Platform) -> Iterator[Console]:
    with open_console(browser, console_platform) as c:
        request.node.console_page = c  # for the report, should the test fail (pytest_runtest_makereport)
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    page = getattr(item, "console_page", None)
    if report.when == "call" and report.failed and page is not None:
        report.sections.append(("where the console page was", page.describe()))


def admin_password(p: Platform) -> str:
    return (p.data / "admin-password").read_text().strip()


@contextmanager
def bare_api(tmp: Path) -> Iterator[str]:
    """The API (the console's shell and files included) on loopback over a fresh data dir in ``tmp``, without the
    platform's other parts: its base URL."""
    from arkserve import settings as settings_mod
    from arkserve.api.app import create_app
    from arkserve.bootstrap import prepare
    from tests.live import serve

    env = {"ARKSERVE_CLI_CONFIG": str(tmp / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp / "data")}, env=env)
    boot = prepare(s, env=env)
    try:
        with serve(create_app(s, boot.store, boot.master)) as base:
            yield base
    finally:
        boot.store.dispose()
