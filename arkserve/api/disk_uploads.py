"""Uploads to the network disk, streamed (never buffered whole): one-shot ``PUT`` and resumable sessions.

One-shot: ``PUT /api/v1/disk/files/{path}`` with the bytes as the body (``Content-Length`` lets the quota
be checked before a byte is stored). Resumable ("tus-lite"): ``POST /api/v1/disk/uploads`` {path, size}
opens a session; ``PATCH /api/v1/disk/uploads/{id}?offset=N`` appends the body from the stored offset
``N`` (409 ``OffsetMismatch`` with the real offset otherwise); ``GET`` tells the stored offset after an
interruption; the file appears under its name when the last byte is stored.

Signed uploads are verified without reading the body first: the signature over method, path, query and
headers is checked up front; a claimed body hash is checked once the body has streamed through, before
the file is installed (an unsigned payload, the empty hash, is accepted as everywhere else). A one-shot
upload or a session's ``PATCH`` with ``Content-Length`` and no hash to check is spliced from the socket into
its staging file (:func:`arkserve.api.transfer.body_receiver`, where the server offers it).

A full file system is 507 ``InsufficientStorage`` (:mod:`arkserve.storage.space`), as is an upload that would
leave less than ``disk.min_free_mib`` free: a one-shot upload's staging file is removed, a session's ``PATCH``
gives back what it stored (the session resumes from the offset it started at).
"""

from __future__ import annotations

import fcntl
import os

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from arkserve.api import transfer
from arkserve.api.disk import entry_out, user_uploads
from arkserve.api.security import Caller, Context
from arkserve.api.streamed import BodyHash, StreamingCaller
from arkserve.auth import signing
from arkserve.errors import InsufficientStorage, PermanentError
from arkserve.schemas import DiskEntryOut, DiskUploadIn, DiskUploadOut
from arkserve.storage.space import space_errors
from arkserve.storage.uploads import Session

router = APIRouter(tags=["network disk"])

_BINARY_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def _length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


def _positioned(fd: int) -> int:
    """``fd`` (opened to append) made to write at its end without ``O_APPEND``, which ``splice(2)`` refuses;
    the session's claim keeps it the only writer, so its end stays where it is."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def upload_out(s: Session, offset: int | None = None, entry: DiskEntryOut | None = None) -> DiskUploadOut:
    return DiskUploadOut(id=s.id, path=s.path, size=s.size, offset=s.offset if offset is None else offset,
                         overwrite=s.overwrite, created_at=s.created_at, expires_at=s.expires_at,
                         complete=entry is not None, entry=entry)


@router.put("/disk/files/{path:path}", response_model=DiskEntryOut, status_code=201, openapi_extra=_BINARY_BODY,
            summary="Upload a file in one request (streamed; 413 before any byte is stored when over quota)")
async def put_file(path: str, request: Request, caller: StreamingCaller, ctx: Context,
                   overwrite: bool = False) -> DiskEntryOut | Response:
    up = await run_in_threadpool(user_uploads, ctx, caller.principal.user)
    writer = await run_in_threadpool(up.begin, path, _length(request), overwrite=overwrite)
    digest = BodyHash(caller.claimed_hash)
    length = _length(request)
    receive_into = transfer.body_receiver(request.scope)
    try:
        if receive_into is not None and length and digest.h is None and "transfer-encoding" not in request.headers:
            with space_errors():
                stored = await receive_into(writer.fd, length)  # spliced from the socket, never through Python
            if stored < length:
                return Response(status_code=400)  # the client went away; nothing was installed
            writer.stored(stored)
            digest.n = stored
        else:
            async for chunk in request.stream():  # each piece written as it comes, while in the CPU's cache
                digest.update(chunk)
                if not writer.room_for(len(chunk)):  # no Content-Length: reserve the next step (the quota lock)
                    await run_in_threadpool(writer.reserve, len(chunk))
                writer.write(chunk)
        digest.check()
        return entry_out(await run_in_threadpool(writer.commit))
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read it; nothing was installed
    finally:
        writer.abort()


@router.post("/disk/uploads", response_model=DiskUploadOut, status_code=201,
             summary="Open a resumable upload (its size is checked against the quota now)")
def create_upload(body: DiskUploadIn, caller: Caller, ctx: Context) -> DiskUploadOut:
    up = user_uploads(ctx, caller.user)
    return upload_out(up.create_session(body.path, body.size, overwrite=body.overwrite))


@router.get("/disk/uploads", response_model=list[DiskUploadOut], summary="Your unfinished resumable uploads")
def list_uploads(caller: Caller, ctx: Context) -> list[DiskUploadOut]:
    return [upload_out(s) for s in user_uploads(ctx, caller.user).list_sessions()]


@router.get("/disk/uploads/{upload_id}", response_model=DiskUploadOut,
            summary="A resumable upload: the stored offset to continue from")
def get_upload(upload_id: str, caller: Caller, ctx: Context) -> DiskUploadOut:
    return upload_out(user_uploads(ctx, caller.user).get_session(upload_id))


@router.patch("/disk/uploads/{upload_id}", response_model=DiskUploadOut, openapi_extra=_BINARY_BODY,
              summary="Append the body at ?offset=N (the stored offset); the last byte installs the file")
async def append_upload(upload_id: str, offset: int, request: Request, caller: StreamingCaller,
                        ctx: Context) -> DiskUploadOut | Response:
    up = await run_in_threadpool(user_uploads, ctx, caller.principal.user)
    appender = await run_in_threadpool(up.resume, upload_id, offset, _length(request))
    digest = BodyHash(caller.claimed_hash)
    length = _length(request)
    receive_into = transfer.body_receiver(request.scope)
    try:
        try:
            if receive_into is not None and length and digest.h is None and "transfer-encoding" not in request.headers:
                if length > appender.session.size - offset:
                    raise PermanentError(f"upload would pass its declared size of {appender.session.size} bytes",
                                         code="SizeMismatch")
                with space_errors():
                    stored = await receive_into(_positioned(appender.fd), length)  # spliced, never through Python
                appender.offset += stored
                digest.n = stored
                if stored < length:
                    raise ClientDisconnect()
            else:
                async for chunk in request.stream():
                    digest.update(chunk)
                    appender.write(chunk)
        except ClientDisconnect:
            await run_in_threadpool(appender.close)  # keep what arrived: the client resumes from there
            return Response(status_code=400)
        except InsufficientStorage:
            appender.rewind(offset)  # the disk is full: what this request stored gives its room back
            raise
        try:
            digest.check()
        except signing.SignatureError:
            appender.rewind(offset)  # a forged body must not stay stored
            raise
    except BaseException:
        await run_in_threadpool(appender.close)
        raise
    stored = appender.offset
    entry = await run_in_threadpool(appender.close)
    return upload_out(appender.session, stored, entry_out(entry) if entry else None)


@router.delete("/disk/uploads/{upload_id}", status_code=204, summary="Cancel a resumable upload")
def cancel_upload(upload_id: str, caller: Caller, ctx: Context) -> Response:
    user_uploads(ctx, caller.user).cancel(upload_id)
    return Response(status_code=204)
