"""``arkserve disk …``: the network disk from a terminal (ls, put, get, rm, mv, mkdir, du).

Remote paths are relative to the root of your disk; a leading ``/`` is accepted (``/datasets`` is
``datasets``). ``put`` and ``get`` take files or whole folders, show progress (speed, ETA) on stderr, and
resume: run the same command again after an interruption and it continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import httpx

from arkserve.cli import disk_transfer as xfer
from arkserve.cli.context import api_errors, state
from arkserve.cli.output import fail, output_option, render
from arkserve.sdk.client import ApiError

ENTRY_COLUMNS = ("name", "type", "size", "modified_at")


@contextmanager
def _disk() -> Iterator[httpx.Client]:
    p = state().load_profile()
    try:
        http = xfer.open_disk(p.endpoint, p.access_key, p.secret_key, p.ca_bundle)
    except ValueError as exc:  # a malformed SK in the profile
        fail(str(exc))
        raise AssertionError from None  # unreachable
    try:
        yield http
    except httpx.HTTPError as exc:
        raise ApiError(0, "ConnectionFailed", f"cannot reach {p.endpoint}: {exc}") from None
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume", 130)
    except OSError as exc:
        fail(str(exc))
    finally:
        http.close()


def _rows(entries: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{**e, "modified_at": e["modified"]} for e in entries]


@click.group("disk", help="Your network disk: files you upload once and mount into services.")
def disk() -> None:
    pass


@disk.command("ls", help="List a folder of your disk (default: its root).")
@click.argument("path", default="")
@output_option
@api_errors
def ls(path: str, fmt: str) -> None:
    with _disk() as http:
        target = xfer.url_path(path)
        listing = xfer.check(http.get(f"/list/{target}" if target else "/list")).json()
    if fmt == "table":
        render(_rows(listing["entries"]), fmt, ENTRY_COLUMNS)
    else:
        render(listing, fmt)


@disk.command("mkdir", help="Make a folder (and its parents).")
@click.argument("path")
@output_option
@api_errors
def mkdir(path: str, fmt: str) -> None:
    with _disk() as http:
        render(xfer.check(http.post("/mkdir", json={"path": xfer.remote(path)})).json(), fmt, ("path", "type"))


@disk.command("rm", help="Delete a file, or a folder with -r.")
@click.argument("path")
@click.option("-r", "--recursive", is_flag=True, help="Delete a folder with everything in it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def rm(path: str, recursive: bool, yes: bool) -> None:
    if not yes:
        click.confirm(f"Delete {path}{' and everything in it' if recursive else ''}?", abort=True)
    with _disk() as http:
        xfer.check(http.delete(f"/files/{xfer.url_path(path)}", params={"recursive": str(recursive).lower()}))
    click.echo(f"deleted {path}")


@disk.command("mv", help="Move or rename a file or folder.")
@click.argument("src")
@click.argument("dst")
@click.option("--overwrite", is_flag=True, help="Replace an existing file at DST.")
@output_option
@api_errors
def mv(src: str, dst: str, overwrite: bool, fmt: str) -> None:
    with _disk() as http:
        body = {"src": xfer.remote(src), "dst": xfer.remote(dst), "overwrite": overwrite}
        render(xfer.check(http.post("/move", json=body)).json(), fmt, ("path", "type", "size"))


@disk.command("du", help="Bytes used on your disk, and its quota.")
@click.option("--user", default=None, help="Admin: another user's disk.")
@output_option
@api_errors
def du(user: str | None, fmt: str) -> None:
    with _disk() as http:
        render(xfer.check(http.get("/usage", params={"user": user} if user else None)).json(), fmt,
               ("username", "used", "reserved", "limit"))


def _is_folder(http: httpx.Client, path: str) -> bool:
    if not xfer.remote(path):
        return True
    resp = http.get(f"/stat/{xfer.url_path(path)}")
    return resp.status_code == 200 and resp.json()["type"] == "folder"


@disk.command("put", help="Upload a file or a folder (recursively) to your disk. DEST defaults to LOCAL's "
              "name at the root; an existing folder DEST, or a DEST ending in '/', receives LOCAL inside it.")
@click.argument("local", type=click.Path(exists=True, path_type=Path))
@click.argument("dest", default="")
@click.option("--overwrite", is_flag=True, help="Replace files that exist on the disk.")
@click.option("--part-size", type=click.IntRange(min=1), default=xfer.PART // 2**20, show_default=True,
              help="MiB sent per request of a resumable upload. Each request ends with the server making its "
              "bytes durable; an interrupted one keeps what arrived, so a smaller part redoes less only when the "
              "server itself stops.")
@api_errors
def put(local: Path, dest: str, overwrite: bool, part_size: int) -> None:
    with _disk() as http:
        if not xfer.remote(dest) or dest.endswith("/") or _is_folder(http, dest):
            dest = f"{xfer.remote(dest).rstrip('/')}/{local.name}".lstrip("/")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        total = 0
        with xfer.progress() as bar:
            if local.is_dir():
                xfer.check(http.post("/mkdir", json={"path": xfer.remote(dest)}))
            for f in files:
                target = dest if f == local else f"{xfer.remote(dest)}/{f.relative_to(local).as_posix()}"
                entry = xfer.put_file(http, f, target, overwrite=overwrite, bar=bar, part=part_size * 2**20)
                total += int(entry["size"])
    click.echo(f"uploaded {len(files)} file(s), {total} bytes, to {dest}")


@disk.command("get", help="Download a file or a folder (recursively) from your disk. LOCAL defaults to its name "
              "in the current folder. Files already there with the same size are skipped.")
@click.argument("src")
@click.argument("local", required=False, type=click.Path(path_type=Path))
@api_errors
def get(src: str, local: Path | None) -> None:
    name = xfer.remote(src).rstrip("/").rsplit("/", 1)[-1] or "disk"
    local = local or Path(name)
    with _disk() as http:
        is_folder = _is_folder(http, src)
        if not is_folder and local.is_dir():
            local = local / name
        count = total = 0
        with xfer.progress() as bar:
            if not is_folder:
                total, count = xfer.get_file(http, src, local, bar=bar), 1
            else:
                local.mkdir(parents=True, exist_ok=True)
                for rel, entry in xfer.walk_remote(http, src):
                    target = local / rel
                    if entry["type"] == "folder":
                        target.mkdir(parents=True, exist_ok=True)
                    elif entry["type"] == "file":
                        if not (target.is_file() and target.stat().st_size == entry["size"]):
                            xfer.get_file(http, entry["path"], target, bar=bar)
                        count, total = count + 1, total + int(entry["size"])
    click.echo(f"downloaded {count} file(s), {total} bytes, to {local}")
