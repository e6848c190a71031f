"""Moving bytes between a local machine and the network disk, for ``arkserve disk put|get``.

Uploads of files over :data:`RESUMABLE_FROM` bytes go through a resumable session, in parts of
:data:`PART` bytes: when a ``put`` is interrupted, running it again finds the session of the same path
and size (``GET /disk/uploads``) and continues from its stored offset. Downloads land in ``NAME.part``
(with the file's ETag beside it) and continue with ``Range`` + ``If-Range``, so a file changed in
between is fetched whole rather than spliced. Progress (bytes, speed, ETA) goes to stderr.

Big bodies go over :mod:`arkserve.cli.disk_wire`: by the kernel on plain HTTP (``sendfile(2)`` up,
``splice(2)`` down), through one reused buffer on HTTPS; behind a proxy or off Linux, httpx streams them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

from arkserve.cli import disk_wire as wire
from arkserve.cli.context import segment, segments
from arkserve.cli.output import printable
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import api_error

RESUMABLE_FROM = 16 * 1024 * 1024
PART = 1024 * 1024 * 1024  # each PATCH ends with an fsync on the server; a cut one keeps what arrived
CHUNK = 1024 * 1024


def remote(path: str) -> str:
    """A disk path as typed (``/datasets/x`` or ``datasets//x/``) -> the API's relative form."""
    return "/".join(p for p in path.strip().split("/") if p)


def url_path(path: str) -> str:
    """The path for a URL (``""``: the root), quoted component by component; a ``.`` or ``..`` component is a
    usage error (exit 2), which an HTTP client would otherwise quietly resolve into another path."""
    rel = remote(path)
    return segments(rel, "disk path") if rel else ""


def check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        resp.read()
        raise api_error(resp)  # the SDK's reading: a body that is not the API's JSON object too
    return resp


def open_disk(endpoint: str, access_key: str, secret_key: str, ca_bundle: str = "") -> httpx.Client:
    """The disk API's client; it verifies TLS against ``ca_bundle`` (else the system's CAs)."""
    return wire.DiskClient(base_url=f"{endpoint.rstrip('/')}/api/v1/disk", auth=ArkAuth(access_key, secret_key),
                           ssl_context=ssl.create_default_context(cafile=ca_bundle) if ca_bundle
                           else httpx.create_ssl_context(),
                           timeout=httpx.Timeout(60.0, connect=10.0))


def progress() -> Progress:
    # A task's description is a file name: plain text, not Rich markup.
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False)


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


def _send(http: httpx.Client, method: str, url: str, params: dict[str, str], local: Path, offset: int,
          count: int, bar: Progress, task: TaskID) -> httpx.Response:
    """One request whose body is ``count`` bytes of ``local`` from ``offset``: by ``sendfile(2)`` on plain
    HTTP (:mod:`arkserve.cli.disk_wire`), else (and for small bodies, on httpx's kept-alive connection)
    streamed by httpx."""
    if count >= wire.MIN_BODY and wire.usable(http):
        fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return wire.upload(http, method, url, params, fd, offset, count, lambda n: bar.advance(task, n))
        finally:
            os.close(fd)
    return http.request(method, url, params=params, content=_read(local, offset, count, bar, task),
                        headers={"Content-Length": str(count)}, timeout=httpx.Timeout(60.0, connect=10.0, write=None))


def put_file(http: httpx.Client, local: Path, dest: str, *, overwrite: bool, bar: Progress,
             part: int = PART) -> dict[str, Any]:
    size = local.stat().st_size
    task = bar.add_task(printable(dest), total=size)
    if size < RESUMABLE_FROM:
        resp = check(_send(http, "PUT", f"/files/{url_path(dest)}", {"overwrite": str(overwrite).lower()}, local,
                           0, size, bar, task))
        return dict(resp.json())
    sessions = check(http.get("/uploads")).json()
    found = [s for s in sessions if s["path"] == remote(dest) and s["size"] == size]
    session = found[0] if found else check(http.post(
        "/uploads", json={"path": remote(dest), "size": size, "overwrite": overwrite})).json()
    offset = int(session["offset"])
    if offset:
        bar.console.print(printable(f"resuming {dest} at byte {offset} of {size}"), markup=False, highlight=False)
    bar.update(task, completed=offset)
    session_url = f"/uploads/{segment(str(session['id']), 'upload id')}"
    while True:
        n = min(part, size - offset)
        state = check(_send(http, "PATCH", session_url, {"offset": str(offset)}, local, offset, n, bar, task)).json()
        offset = int(state["offset"])
        if state["complete"]:
            return dict(state["entry"])
        bar.update(task, completed=offset)


def _store(local: Path, have: int, body: Callable[[int], int], count: int) -> int:
    """Write ``count`` body bytes to ``local`` from byte ``have`` (the rest of the file cut) with ``body(fd)``,
    make them durable; returns the bytes stored (fewer: the connection ended early)."""
    fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, have)
        os.lseek(fd, have, os.SEEK_SET)
        stored = body(fd)
        os.fsync(fd)
    finally:
        os.close(fd)
    if stored < count:
        raise httpx.ReadError(f"the connection ended after {stored} of {count} bytes; run again to resume")
    return stored


def _write_all(fd: int, chunks: Iterator[bytes], advance: Callable[[int], None]) -> int:
    stored = 0
    for data in chunks:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        stored += len(data)
        advance(len(data))
    return stored


def get_file(http: httpx.Client, src: str, local: Path, *, bar: Progress) -> int:
    """Download ``src`` to ``local`` (continuing ``local.part`` when there is one); returns the file's size.
    The body is spliced from the socket into the file on plain HTTP (:mod:`arkserve.cli.disk_wire`)."""
    part, tag_file = local.with_name(local.name + ".part"), local.with_name(local.name + ".part.etag")
    have = part.stat().st_size if part.exists() and tag_file.exists() else 0
    headers = {"Range": f"bytes={have}-", "If-Range": tag_file.read_text()} if have else {}
    url = f"/files/{url_path(src)}"

    def begin(resp: httpx.Response) -> tuple[int, int, Callable[[int], None]]:
        """(offset to write from, body bytes, progress) of a 200/206 response."""
        partial = resp.status_code == 206
        size = int(resp.headers["content-range"].rsplit("/", 1)[-1]) if partial \
            else int(resp.headers.get("content-length", 0))
        tag_file.write_text(resp.headers.get("etag", ""))
        start = have if partial else 0
        task = bar.add_task(printable(remote(src)), total=size, completed=start)
        return start, size - start, lambda n: bar.advance(task, n)

    if wire.usable(http):
        with wire.download(http, url, headers) as w:
            status, raw = w.final_head()
            resp = httpx.Response(status, headers=raw, request=w.req)
            if status not in (200, 206):
                resp = w.response(status, raw)
            if status != 416:
                check(resp)
                start, count, advance = begin(resp)
                _store(part, start, lambda fd: w.splice_into(fd, count, advance), count)
    else:
        with http.stream("GET", url, headers={**headers, "Accept-Encoding": "identity"},
                         timeout=httpx.Timeout(60.0, connect=10.0, read=120.0)) as resp:
            if resp.status_code != 416:
                check(resp)
                start, count, advance = begin(resp)  # each piece written as read (no re-chunking copies)
                _store(part, start, lambda fd: _write_all(fd, resp.iter_raw(), advance), count)
    if resp.status_code != 416:
        os.replace(part, local)
        tag_file.unlink(missing_ok=True)
        return start + count
    # 416: the .part is no prefix of the file any more: start again
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
