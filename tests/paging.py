"""One check for every keyset-paged list: read it page by page while a writer adds names before and after
wherever the reader is (at least one write between any two pages), then assert that no row came twice, none that
existed before was skipped, the pages are in name order, and the total count grew."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from arkserve.sdk.client import Page


def check_pages_while_writing(read: Callable[[str | None], Page], write: Callable[[str], None],
                              before: list[str], new: Iterable[str], name: Callable[[dict[str, object]], str],
                              timeout: float = 30.0) -> None:
    """``read(cursor)`` reads a page (None: the first), ``write(name)`` adds one row named ``name``; ``before``
    exist already; ``new`` are written one at a time while the pages are read."""
    stop = threading.Event()
    made: list[str] = []
    progress = threading.Condition()

    def write_in_between() -> None:
        for n in new:
            if stop.is_set():
                return
            write(n)
            with progress:
                made.append(n)
                progress.notify_all()

    writer = threading.Thread(target=write_in_between)
    first = read(None)
    seen = [name(r) for r in first.items]
    totals: list[int] = []
    writer.start()
    try:
        cursor = first.next_cursor
        while cursor is not None:
            with progress:  # at least one write between any two pages (the writer keeps going meanwhile)
                count = len(made)
                assert progress.wait_for(lambda: len(made) > count or not writer.is_alive(), timeout=timeout)
            page = read(cursor)
            seen += [name(r) for r in page.items]
            assert page.total is not None, "no X-Total-Count"
            totals.append(page.total)
            cursor = page.next_cursor
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)), "a row came twice"
    assert seen == sorted(seen), "out of name order"
    assert set(before) <= set(seen), f"skipped: {sorted(set(before) - set(seen))}"
    assert len(made) >= len(totals) and totals == sorted(totals) and totals[0] < totals[-1]  # the count grew
    assert set(seen) <= set(before) | set(made)


def check_cli_pages(cli: Callable[..., tuple[int, str, str]], names: list[str], noun: str) -> None:
    """A paged ``list`` command over 7 rows named ``cli-…`` (``names``, in order) and more: the first page of 3 and
    the stderr hint with its count and cursor, the next page by that cursor, then ``--all``: one header and
    every page's rows. ``cli(*args)`` runs the command and returns (exit code, stdout, stderr)."""
    code, out, err = cli("--limit", "3", "--prefix", "cli-")
    assert code == 0, out + err
    assert [line.split()[0] for line in out.splitlines()[1:]] == names[:3]
    assert f"3 of 7 {noun}" in err and "--cursor " in err
    cursor = err.split("--cursor ")[1].split()[0]
    code, out, err = cli("--limit", "3", "--cursor", cursor, "--prefix", "cli-")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == names[3:6], out + err
    code, out, err = cli("--limit", "3", "--prefix", "cli-", "--all")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[0] == "NAME" and err == "", out + err
    assert [line.split()[0] for line in lines[1:]] == names  # one header, then every page's rows
