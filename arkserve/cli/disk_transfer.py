"""Moving bytes between a local machine and the network disk, for ``arkserve disk put|get``.

Uploads of files over :data:`RESUMABLE_FROM` bytes go through a resumable session, in parts of
:data:`PART` bytes: when a ``put`` is interrupted, running it again finds the session of the same path
and size (``GET /disk/uploads``) and continues from its stored offset. Downloads land in ``NAME.part``
(with the file's ETag beside it) and continue with ``Range`` + ``If-Range``, so a file changed in
between is fetched whole rather than spliced. Progress (bytes, speed, ETA) goes to stderr.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError

RESUMABLE_FROM = 16 * 1024 * 1024
PART = 64 * 1024 * 1024
CHUNK = 1024 * 1024


def remote(path: str) -> str:
    """A disk path as typed (``/datasets/x`` or ``datasets//x/``) -> the API's relative form."""
    return "/".join(p for p in path.strip().split("/") if p)


def url_path(path: str) -> str:
    """The path for a URL, with ``.``/``..`` components escaped so that the server sees (and refuses) them
    instead of an HTTP client quietly resolving them into another path."""
    return "/".join(p.replace(".", "%2E") if p in (".", "..") else quote(p, safe="")
                    for p in remote(path).split("/") if p)


def check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        resp.read()
        try:
            body = resp.json()
        except ValueError:
            body = {}
        raise ApiError(resp.status_code, str(body.get("code", f"HTTP{resp.status_code}")),
                       str(body.get("message", resp.text[:200])), str(body.get("request_id", "")))
    return resp


def open_disk(endpoint: str, access_key: str, secret_key: str, ca_bundle: str = "") -> httpx.Client:
    return httpx.Client(base_url=f"{endpoint.rstrip('/')}/api/v1/disk", auth=ArkAuth(access_key, secret_key),
                        verify=ca_bundle or True, timeout=httpx.Timeout(60.0, connect=10.0))


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=False)


def _read(path: Path, start: int, length: int, bar: Progress, task: TaskID) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                raise OSError(f"{path} shrank while being uploaded")
            left -= len(data)
            bar.advance(task, len(data))
            yield data


def put_file(http: httpx.Client, local: Path, dest: str, *, overwrite: bool, bar: Progress,
             part: int = PART) -> dict[str, Any]:
    size = local.stat().st_size
    task = bar.add_task(dest, total=size)
    if size < RESUMABLE_FROM:
        resp = check(http.put(f"/files/{url_path(dest)}", params={"overwrite": str(overwrite).lower()},
                              content=_read(local, 0, size, bar, task), headers={"Content-Length": str(size)}))
        return dict(resp.json())
    sessions = check(http.get("/uploads")).json()
    found = [s for s in sessions if s["path"] == remote(dest) and s["size"] == size]
    session = found[0] if found else check(http.post(
        "/uploads", json={"path": remote(dest), "size": size, "overwrite": overwrite})).json()
    offset = int(session["offset"])
    if offset:
        bar.console.print(f"resuming {dest} at byte {offset} of {size}")
    bar.update(task, completed=offset)
    while True:
        n = min(part, size - offset)
        resp = http.patch(f"/uploads/{session['id']}", params={"offset": offset},
                          content=_read(local, offset, n, bar, task), headers={"Content-Length": str(n)},
                          timeout=httpx.Timeout(60.0, connect=10.0, write=None))
        state = check(resp).json()
        offset = int(state["offset"])
        if state["complete"]:
            return dict(state["entry"])
        bar.update(task, completed=offset)


def get_file(http: httpx.Client, src: str, local: Path, *, bar: Progress) -> int:
    """Download ``src`` to ``local`` (continuing ``local.part`` when there is one); returns the file's size."""
    part, tag_file = local.with_name(local.name + ".part"), local.with_name(local.name + ".part.etag")
    have = part.stat().st_size if part.exists() and tag_file.exists() else 0
    headers = {"Range": f"bytes={have}-", "If-Range": tag_file.read_text()} if have else {}
    with http.stream("GET", f"/files/{url_path(src)}", headers=headers,
                     timeout=httpx.Timeout(60.0, connect=10.0, read=120.0)) as resp:
        if resp.status_code != 416:  # 416: the .part is no prefix of the file any more: start again below
            check(resp)
            partial = resp.status_code == 206
            size = int(resp.headers["content-range"].rsplit("/", 1)[-1]) if partial \
                else int(resp.headers.get("content-length", 0))
            tag_file.write_text(resp.headers.get("etag", ""))
            task = bar.add_task(remote(src), total=size, completed=have if partial else 0)
            with part.open("ab" if partial else "wb") as f:
                for data in resp.iter_bytes(CHUNK):
                    f.write(data)
                    bar.advance(task, len(data))
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, local)
            tag_file.unlink(missing_ok=True)
            return size
    part.unlink(missing_ok=True)
    tag_file.unlink(missing_ok=True)
    return get_file(http, src, local, bar=bar)


def walk_remote(http: httpx.Client, root: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path relative to ``root``, entry) of every file and folder under the remote folder ``root``."""
    listing = check(http.get(f"/list/{url_path(root)}" if remote(root) else "/list")).json()
    for entry in listing["entries"]:
        rel = entry["path"][len(remote(root)):].lstrip("/")
        yield rel, entry
        if entry["type"] == "folder":
            for sub, e in walk_remote(http, entry["path"]):
                yield f"{rel}/{sub}", e
