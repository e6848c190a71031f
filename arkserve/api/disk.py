"""The network disk: list, stat, make folders, move, delete, download (with ``Range``), usage and quotas.

Every path is relative to the root of the caller's own disk (``<data_dir>/disks/<username>/``) and is
checked by :mod:`arkserve.storage.paths`. Uploads live in :mod:`arkserve.api.disk_uploads`.
"""

from __future__ import annotations

import mimetypes
import os
import re
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from arkserve.api import transfer
from arkserve.api.context import AppContext
from arkserve.api.security import Caller, Context
from arkserve.errors import PermanentError
from arkserve.schemas import (
    DiskEntryOut,
    DiskListingOut,
    DiskMoveIn,
    DiskPathIn,
    DiskQuotaIn,
    DiskUsageOut,
    ErrorBody,
)
from arkserve.storage.disk import GIB, Disk, Entry, user_root
from arkserve.storage.space import MIB
from arkserve.storage.uploads import Uploads, staging_dir
from arkserve.store import disk_quotas
from arkserve.store import users as user_store
from arkserve.store.users import User

router = APIRouter(tags=["network disk"], responses={
    400: {"description": "BadPath: a refused path (.., absolute, NUL, symlink, name over 255 bytes)",
          "model": ErrorBody},
    404: {"description": "PathNotFound: no such file or folder; UserNotFound (admins naming a user)",
          "model": ErrorBody},
    409: {"description": "PathExists, NotAFolder, FolderNotEmpty, UploadInProgress: exists already, not a folder, "
                         "not empty, or an upload to that name is in progress", "model": ErrorBody}})


def user_uploads(ctx: AppContext, user: User) -> Uploads:
    """The caller's disk (with their quota) and its uploads."""
    with ctx.store.read() as conn:
        limit = disk_quotas.get(conn, user.id)
    if limit is None:
        limit = int(ctx.settings.disk.quota_gib * GIB)
    disk = Disk(user_root(ctx.settings.data_dir, user.username), limit)
    return Uploads(disk, staging_dir(ctx.settings.data_dir, user.username),
                   session_ttl_s=ctx.settings.disk.upload_ttl_s, min_free=ctx.settings.disk.min_free_mib * MIB)


def user_disk(ctx: AppContext, user: User) -> Disk:
    return user_uploads(ctx, user).disk


def entry_out(e: Entry) -> DiskEntryOut:
    return DiskEntryOut(path=e.path, name=e.name, type=e.type, size=e.size, modified=e.modified)  # type: ignore[arg-type]


def _usage(ctx: AppContext, user: User) -> DiskUsageOut:
    up = user_uploads(ctx, user)
    used, reserved = up.usage()
    return DiskUsageOut(username=user.username, used=used, reserved=reserved, limit=up.disk.limit)


@router.get("/disk/usage", response_model=DiskUsageOut, summary="Bytes used on your disk and its quota "
            "(admin: ?user=NAME)")
def usage(caller: Caller, ctx: Context, user: str | None = None) -> DiskUsageOut:
    target = caller.user
    if user and user != caller.user.username:
        caller.require_admin()
        with ctx.store.read() as conn:
            target = user_store.get(conn, user)
    return _usage(ctx, target)


@router.put("/disk/quota/{username}", response_model=DiskUsageOut, summary="Set a user's disk quota (admin)")
def set_quota(username: str, body: DiskQuotaIn, caller: Caller, ctx: Context) -> DiskUsageOut:
    caller.require_admin()
    with ctx.store.begin() as conn:
        target = user_store.get(conn, username)
        disk_quotas.set_limit(conn, target.id, body.limit_bytes)
    return _usage(ctx, target)


def _listing(ctx: AppContext, user: User, path: str) -> DiskListingOut:
    disk = user_disk(ctx, user)
    return DiskListingOut(path=path.strip("/"), entries=[entry_out(e) for e in disk.list(path)])


@router.get("/disk/list", response_model=DiskListingOut, summary="List the root folder of your disk")
def list_root(caller: Caller, ctx: Context) -> DiskListingOut:
    return _listing(ctx, caller.user, "")


@router.get("/disk/list/{path:path}", response_model=DiskListingOut, summary="List a folder")
def list_folder(path: str, caller: Caller, ctx: Context) -> DiskListingOut:
    return _listing(ctx, caller.user, path)


@router.get("/disk/stat/{path:path}", response_model=DiskEntryOut, summary="Type, size and time of a file or folder")
def stat_path(path: str, caller: Caller, ctx: Context) -> DiskEntryOut:
    return entry_out(user_disk(ctx, caller.user).stat(path))


@router.post("/disk/mkdir", response_model=DiskEntryOut, status_code=201,
             summary="Make a folder (and its parents; an existing folder is fine)")
def mkdir(body: DiskPathIn, caller: Caller, ctx: Context) -> DiskEntryOut:
    return entry_out(user_disk(ctx, caller.user).mkdir(body.path))


@router.post("/disk/move", response_model=DiskEntryOut, summary="Move or rename a file or folder")
def move(body: DiskMoveIn, caller: Caller, ctx: Context) -> DiskEntryOut:
    return entry_out(user_disk(ctx, caller.user).move(body.src, body.dst, overwrite=body.overwrite))


@router.delete("/disk/files/{path:path}", status_code=204,
               summary="Delete a file, or a folder (non-empty ones with ?recursive=true)")
def delete(path: str, caller: Caller, ctx: Context, recursive: bool = False) -> Response:
    user_disk(ctx, caller.user).delete(path, recursive=recursive)
    return Response(status_code=204)


_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as (first, last) inclusive; ``None`` to send the whole file (no header, several
    ranges, or a malformed one, which RFC 9110 says to ignore). Unsatisfiable: PermanentError 416."""
    m = _RANGE_RE.match((header or "").strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        n = int(m.group(2))
        if n == 0:
            raise PermanentError("range is empty", code="RangeNotSatisfiable", status=416)
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        raise PermanentError(f"range starts at {first} but the file has {size} bytes", code="RangeNotSatisfiable",
                             status=416, details={"size": size})
    return first, last


class FileSlice(Response):
    """Bytes ``first..last`` of an open file as the body, sent by the kernel where the server can
    (:func:`arkserve.api.transfer.send_file`); the descriptor is closed when the response ends."""

    def __init__(self, fd: int, first: int, last: int, *, status_code: int, headers: dict[str, str],
                 media_type: str) -> None:
        super().__init__(status_code=status_code, headers=headers, media_type=media_type)
        self.fd, self.first, self.last = fd, first, last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await transfer.send_file(scope, send, self.fd, self.first, self.last)
        finally:
            os.close(self.fd)


@router.get("/disk/files/{path:path}", summary="Download a file (``Range: bytes=a-b`` gives 206)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the whole file"},
                       206: {"content": {"application/octet-stream": {}}, "description": "the requested range"},
                       416: {"model": ErrorBody, "description": "RangeNotSatisfiable: range outside the file"}})
def download(path: str, request: Request, caller: Caller, ctx: Context) -> Response:
    fd, st = user_disk(ctx, caller.user).open(path)
    try:
        size = st.st_size
        etag = f'"{st.st_mtime_ns:x}-{size:x}"'
        if_range = request.headers.get("if-range")
        wanted = parse_range(request.headers.get("range"), size) if if_range in (None, etag) else None
    except BaseException:
        os.close(fd)
        raise
    name = path.rstrip("/").rsplit("/", 1)[-1]
    headers = {"Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    first, last, status = 0, size - 1, 200
    if wanted is not None:
        first, last, status = wanted[0], wanted[1], 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(max(0, last - first + 1))
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return FileSlice(fd, first, last, status_code=status, headers=headers, media_type=media)
