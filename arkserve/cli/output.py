"""Rendering command results as a table (humans), JSON (scripts; stable) or YAML."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml")
output_option = click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table",
                             show_default=True, help="Output format; json is stable for scripts.")

# C0 and C1 control characters but tab and newline (ESC, BEL, CR, CSI...): a name, a description, an event
# message or a log line may come from another user, or from anyone (the username of a failed login), and
# written raw they would drive the terminal (OSC 52 sets the clipboard, CSI 2J clears the screen).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_BUT_SGR = re.compile(r"(\x1b\[[0-9;]*m)|[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # SGR: colours, bold, reset


def printable(text: str, *, keep_colours: bool = False) -> str:
    """``text`` with every control character but tab and newline shown as its ``\\xNN`` escape, for printing
    server-provided text to a terminal. ``keep_colours``: plain SGR sequences (``ESC [ digits ; m``: colours,
    bold, reset) stay as they are, for a replica's coloured log lines (``service logs``)."""
    if keep_colours:
        return _CONTROL_BUT_SGR.sub(lambda m: m.group(1) or f"\\x{ord(m.group()):02x}", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and (column.endswith("_at") or column == "time"):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return printable(str(value))


def render(data: Any, fmt: str, columns: Sequence[str] = ()) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if fmt == "yaml":
        click.echo(yaml.safe_dump(data, sort_keys=True, allow_unicode=True).rstrip())
        return
    rows = data if isinstance(data, list) else [data]
    if not columns:
        columns = list(rows[0].keys()) if rows else []
    table = Table(box=None, header_style="bold")
    for c in columns:
        table.add_column(c.upper())
    for row in rows:
        table.add_row(*(_cell(row.get(c), c) for c in columns))
    # Piped output is for grep and awk: never truncate or wrap cells there. Cells are plain text, never Rich
    # markup ("[/x]" in a stored name would end the command, "[link=...]" plant a hyperlink).
    Console(soft_wrap=True, markup=False, highlight=False,
            width=None if sys.stdout.isatty() else 100_000).print(table)


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, header: bool = True) -> None:
    """A table of plain aligned columns, as ``render`` draws one, in a fraction of its time: for long lists
    (``service list --all`` prints thousands of rows, a page at a time; pass ``header=False`` after the first)."""
    cells = [[_cell(row.get(c), c) for c in columns] for row in rows]
    if header:
        cells.insert(0, [c.upper() for c in columns])
    widths = [max((len(line[i]) for line in cells), default=0) for i in range(len(columns))]
    click.echo("".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n"
                       for line in cells), nl=False)


EXIT_FAILURE = 1  # the API refused, or the work failed (docs/cli.md)
EXIT_USAGE = 2  # click's own: a bad option or argument
EXIT_AUTH = 3  # authentication or permission failure (401, 403)
EXIT_TIMEOUT = 4  # --wait gave up before the work was done


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    click.echo(f"Error: {printable(message)}", err=True)  # API messages quote names, the server's text
    raise SystemExit(code)
