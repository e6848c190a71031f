"""The console's Markdown renderer (model cards, ``markdown.js``) in real headless Chromium: links whose URL holds
balanced parentheses (Wikipedia's style) render whole, and only http(s) links become links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.conftest import VIEWPORT, bare_api


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Any]:
    """render(source) -> the paragraphs' text and links ({text, href}) as markdown.js builds them."""
    with bare_api(tmp_path_factory.mktemp("markdown")) as base:
        context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        try:
            page = context.new_page()
            page.goto(base + "/console/login")

            def render(source: str) -> Any:
                return page.evaluate("""async (source) => {
                    const { markdown } = await import('/static/markdown.js');
                    const div = markdown(source);
                    return { text: div.textContent, html: div.innerHTML,
                             links: [...div.querySelectorAll('a')].map(a => ({ text: a.textContent,
                                                                              href: a.getAttribute('href') })) };
                }""", source)

            yield render
        finally:
            context.close()


def test_a_link_with_parentheses_in_its_url_renders_whole(rendered: Any) -> None:
    out = rendered("See [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) and [docs](https://a.example/x).")
    assert out["links"] == [{"text": "Mercury", "href": "https://en.wikipedia.org/wiki/Mercury_(planet)"},
                            {"text": "docs", "href": "https://a.example/x"}]
    assert out["text"] == "See Mercury and docs."


def test_a_javascript_link_with_parentheses_is_plain_text(rendered: Any) -> None:
    out = rendered("[js](javascript:alert(1)) [data](data:text/html,(x)) [bad](https://x.example/a)b)")
    assert out["links"] == [{"text": "bad", "href": "https://x.example/a"}]  # the stray ")" stays text
    assert out["text"] == "js data badb)"
    assert "javascript" not in out["html"] and "<script" not in out["html"]
