"""``arkserve model list|show|publish|delete`` (the model market), and the ``--mount`` syntax of ``service``.

``publish NAME --version V DIR`` streams DIR as a tar archive (built on the fly, never whole in memory)
with a progress bar; ``--disk PATH`` publishes a folder of your network disk instead.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import fail, output_option, printable, render
from arkserve.cli.pages import paging_options, show_pages

COLUMNS = ("name", "latest", "task", "framework", "license", "size", "public", "owner")
FILE_COLUMNS = ("path", "size", "sha256")
CHUNK = 1 << 20


def parse_mount(text: str) -> dict[str, Any]:
    """``model:NAME@VERSION:/target`` or ``disk:/path/in/disk:/target[:rw|:ro]`` -> a spec mount."""
    source, _, rest = text.partition(":")
    read_only = True
    if source == "disk" and rest.endswith((":rw", ":ro")):
        read_only, rest = rest.endswith(":ro"), rest[:-3]
    ref, _, target = rest.rpartition(":")
    if source not in ("model", "disk") or not ref or not target:
        fail(f"--mount {text!r}: expected model:NAME@VERSION:/path or disk:/folder:/path[:rw]")
    return {"source": source, "ref": ref, "mount_path": target, "read_only": read_only}


def mount_lines(spec: dict[str, Any]) -> list[str]:
    """One line per mount for ``service get``: where, what (model digest or disk path), ro/rw."""
    lines = []
    legacy = spec.get("model") or {}
    if legacy.get("source") == "disk" and legacy.get("mount_path"):
        lines.append(f"{legacy['mount_path']}  <- disk {legacy.get('ref', '')}  ro")
    for m in spec.get("mounts") or []:
        what = f"model {m['ref']} ({m['digest']})" if m["source"] == "model" else f"disk {m['ref']}"
        lines.append(f"{m['mount_path']}  <- {what}  {'ro' if m.get('read_only', True) else 'rw'}")
    return lines


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _path(name: str, version: str | None = None) -> str:
    """``/models/NAME`` or ``/models/NAME/versions/VERSION``, each quoted as one segment."""
    path = f"/models/{segment(name, 'model name')}"
    return f"{path}/versions/{segment(version, 'version')}" if version is not None else path


def _row(m: dict[str, Any]) -> dict[str, Any]:
    latest = m["versions"][-1]["version"] if m["versions"] else "-"
    return {**m, "latest": latest, "size": _size(m["size"]), "public": "yes" if m["public"] else "private"}


def _files(folder: Path) -> list[tuple[str, Path, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode):
                fail(f"{path}: only regular files can be published (no links or devices)")
            out.append((path.relative_to(folder).as_posix(), path, st.st_size))
    if not out:
        fail(f"{folder}: no files to publish")
    return out


def tar_chunks(files: list[tuple[str, Path, int]], advance: Callable[[int], None]) -> Iterator[bytes]:
    """A tar archive of ``files``, produced chunk by chunk (a header, the file's bytes, padding to 512)."""
    for rel, path, size in files:
        info = tarfile.TarInfo(rel)
        info.size, info.mode, info.mtime = size, 0o644, int(path.stat().st_mtime)
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        with path.open("rb") as f:
            while sent < size and (chunk := f.read(min(CHUNK, size - sent))):
                sent += len(chunk)
                advance(len(chunk))
                yield chunk
        if sent != size:
            fail(f"{path} changed while it was being published")
        if size % 512:
            yield b"\0" * (512 - size % 512)
    yield b"\0" * 1024


@click.group("model", help="The model market: find, publish and delete models.")
def model() -> None:
    pass


@model.command("list", help="List models you can use (public ones and yours) in name order, searched or filtered on "
               "the server: the first page (--limit), or every page with --all.")
@click.argument("query", required=False, default="")
@click.option("--task", default="", help="e.g. image-classification")
@click.option("--framework", default="", help="e.g. pytorch")
@click.option("--prefix", default="", help="Only names starting with this.")
@click.option("--owner", default="", help="Only this publisher's models.")
@click.option("--visibility", type=click.Choice(["public", "private"]), default=None, help="Only public or private.")
@paging_options("models", 100, 1000)
@output_option
@api_errors
def list_models(query: str, task: str, framework: str, prefix: str, owner: str, visibility: str | None, limit: int,
                cursor: str | None, every: bool, fmt: str) -> None:
    with state().client() as c:
        pages = c.pages("/models", q=query or None, task=task or None, framework=framework or None,
                        prefix=prefix or None, owner=owner or None, visibility=visibility, limit=limit, cursor=cursor)
        show_pages(pages, fmt, COLUMNS, every=every, noun="models", row=_row)


@model.command("show", help="Show a model: card, versions with their digests, and the files of a version.")
@click.argument("name")
@click.option("--version", default=None, help="Whose files to list (default: the latest).")
@output_option
@api_errors
def show(name: str, version: str | None, fmt: str) -> None:
    path = _path(name)
    with state().client() as c:
        m = c.get(path)
    if fmt != "table":
        render(m, fmt)
        return
    # The card is the publisher's text, shown to every user of a public model: printable()
    click.echo(printable(f"Name:       {m['name']}   (publisher {m['owner']}, "
                         f"{'public' if m['public'] else 'private'})"))
    click.echo(printable(f"Task:       {m['task'] or '-'}   framework {m['framework'] or '-'}   "
                         f"license {m['license'] or '-'}"))
    if m["mounted_by"]:
        click.echo(printable(f"Mounted by: {', '.join(m['mounted_by'])}"))
    click.echo("Versions:")
    for v in m["versions"]:
        click.echo(printable(f"  {v['version']:<10} {v['digest']}  {v['file_count']} files  {_size(v['size'])}"))
    chosen = [v for v in m["versions"] if v["version"] == version] if version else m["versions"][-1:]
    if version and not chosen:
        fail(f"{name} has no version {version}")
    if chosen:
        click.echo(printable(f"\nFiles of version {chosen[0]['version']}:"))
        render(chosen[0]["files"], "table", FILE_COLUMNS)
    if m["description"]:
        click.echo("\n" + printable(m["description"]))


@model.command("publish", help="Publish DIR (a local folder) as version VERSION of model NAME, with a progress bar; "
                               "or, with --disk, a folder of your network disk.")
@click.argument("name")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="Version label; a published version never changes.")
@click.option("--disk", "disk_path", default=None, help="Publish this folder of your network disk instead of DIR.")
@click.option("--task", default=None)
@click.option("--framework", default=None)
@click.option("--license", "license_", default=None)
@click.option("--description-file", type=click.File("r"), default=None, help="Markdown (default: DIR's README.md).")
@click.option("--public", is_flag=True, default=None, help="Visible to every user (admins only).")
@output_option
@api_errors
def publish(name: str, directory: Path | None, version: str, disk_path: str | None, task: str | None,
            framework: str | None, license_: str | None, description_file: Any, public: bool | None,
            fmt: str) -> None:
    card = {"task": task, "framework": framework, "license": license_, "public": public,
            "description": description_file.read() if description_file else None}
    card = {k: v for k, v in card.items() if v is not None}
    if (directory is None) == (disk_path is None):
        fail("give either DIR (a local folder) or --disk PATH (a folder of your network disk)")
    path = _path(name, version)
    with state().client() as c:
        if disk_path is not None:
            made = c.post(path, {"disk_path": disk_path, **card})
        else:
            assert directory is not None
            files = _files(directory)
            columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                       TransferSpeedColumn(), TimeRemainingColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                job = bar.add_task(f"{name}@{version}", total=sum(size for _, _, size in files))
                params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in card.items()}
                made = c.upload("PUT", f"{path}/archive",
                                tar_chunks(files, lambda n: bar.advance(job, n)), params=params,
                                content_type="application/x-tar")
    v = next(v for v in made["versions"] if v["version"] == version)
    if fmt == "table":
        click.echo(f"published {name}@{version}: {v['digest']} ({v['file_count']} files, {_size(v['size'])})")
    else:
        render(made, fmt)


@model.command("delete", help="Delete a version (--version) or the whole model; refused while a service mounts it.")
@click.argument("name")
@click.option("--version", default=None)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def delete(name: str, version: str | None, yes: bool) -> None:
    what = f"{name}@{version}" if version else f"model {name} and all its versions"
    path = _path(name, version)
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    with state().client() as c:
        c.delete(path)
    click.echo(f"deleted {what}")
