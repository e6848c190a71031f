"""Printing a paged list (``service list``, ``service events``, ``model list``, ``image list``): the first page, or
every page as it arrives (``--all``), with the options every paged command shares.

A table prints its header once and each page's rows as soon as the page is in, so the first rows show after
one request however long the list is; without ``--all``, stderr says how many rows there are and the
``--cursor`` of the next page. JSON and YAML print one document: the first page's rows, or every row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from arkserve.cli.output import render, render_rows
from arkserve.sdk.client import Page

F = Callable[..., Any]


def paging_options(noun: str, default: int, most: int) -> Callable[[F], F]:
    """``--limit``, ``--cursor`` and ``--all`` (as ``every``) for a command listing ``noun``."""
    def wrap(f: F) -> F:
        f = click.option("--all", "every", is_flag=True, help="Every page, printed as each arrives.")(f)
        f = click.option("--cursor", default=None, help="Start at this page (the cursor a previous list printed).")(f)
        return click.option("--limit", type=click.IntRange(1, most), default=default, show_default=True,
                            help=f"{noun.capitalize()} per page.")(f)
    return wrap


def show_pages(pages: Iterator[Page], fmt: str, columns: Sequence[str], *, every: bool, noun: str,
               row: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: r, newest_first: bool = False) -> None:
    """Print ``pages`` (an SDK ``Client.pages`` iterator). ``newest_first``: the pages go back in time, each one
    oldest first (events): ``--all`` then prints a table newest first (as the pages come) and a document
    oldest first."""
    if fmt != "table":  # scripts get one document
        if not every:
            render(next(pages).items, fmt)
            return
        done = [page.items for page in pages]
        render([r for items in (reversed(done) if newest_first else done) for r in items], fmt)
        return
    for i, page in enumerate(pages):
        items = page.items[::-1] if newest_first and every else page.items
        if items or i == 0:
            render_rows([row(r) for r in items], columns, header=i == 0)
        if not every:
            if page.next_cursor is not None:
                what = f"the {len(items)} newest of {page.total} {noun}; older ones" if newest_first else \
                    f"{len(items)} of {page.total} {noun}; the rest"
                click.echo(f"{what}: --all, or the next page: --cursor {page.next_cursor}", err=True)
            return
