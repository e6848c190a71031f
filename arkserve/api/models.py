"""The model market: list and search models, show one, publish a version (from a network-disk folder or an
uploaded tar archive), change a model's card and visibility, delete versions and models.

Anyone sees public models and their own; a user publishes private models, an admin decides which are
public (curation). A version never changes once published; deleting one a service mounts is refused,
naming the service.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from arkserve.api import cursors
from arkserve.api.errors import validated
from arkserve.api.mounts import services_mounting
from arkserve.api.security import Caller, Context, Principal
from arkserve.api.streamed import BodyHash, StreamingCaller
from arkserve.errors import Conflict, Forbidden, NotFound, PermanentError, ValidationFailed
from arkserve.schemas import ModelCard, ModelFileOut, ModelOut, ModelPublishDisk, ModelVersionOut
from arkserve.storage import market
from arkserve.storage.space import MIB, space_errors
from arkserve.storage.uploads import GROW_STEP
from arkserve.store import model_pages
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store.model_pages import ModelFilters
from arkserve.store.models import ModelRow, VersionRow

router = APIRouter(tags=["models"])


def _version_out(v: VersionRow, files: bool) -> ModelVersionOut:
    return ModelVersionOut(version=v.version, digest=v.digest, size=v.size, file_count=v.file_count,
                           created_at=v.created_at,
                           files=[ModelFileOut(**f) for f in v.manifest] if files else None)


def _out(m: ModelRow, *, files: bool = False, mounted_by: list[str] | None = None) -> ModelOut:
    return ModelOut(name=m.name, owner=m.owner, description=m.description, task=m.task, framework=m.framework,
                    license=m.license, public=m.public, size=m.versions[-1].size if m.versions else 0,
                    versions=[_version_out(v, files) for v in m.versions], mounted_by=mounted_by or [],
                    created_at=m.created_at, updated_at=m.updated_at)


def _visible(ctx: Any, caller: Principal, name: str) -> ModelRow:
    with ctx.store.read() as conn:
        m = model_store.get(conn, name)
    if not m.public and not caller.owns(m.owner_id):
        raise Forbidden(f'model "{name}" is private to {m.owner}', code="ModelPrivate")
    return m


def _may_change(caller: Principal, m: ModelRow) -> None:
    if not caller.owns(m.owner_id):
        raise Forbidden(f'model "{m.name}" belongs to {m.owner}: only they or an admin may change it')


def _card(body: ModelCard, caller: Principal) -> dict[str, Any]:
    card = body.model_dump(exclude_unset=True, exclude_none=True, include=set(ModelCard.model_fields))
    if card.get("public") and not caller.user.is_admin:
        raise Forbidden("only admins make a model public (the market's public models are curated); publish it "
                        "private and ask an admin", code="PublicNeedsAdmin")
    return card


def _mounted_by(ctx: Any, caller: Principal, name: str, version: str | None = None) -> list[str]:
    with ctx.store.read() as conn:
        rows = service_store.list_all(conn, None if caller.user.is_admin else caller.user.id)
    return services_mounting(rows, name, version)


@router.get("/models", response_model=list[ModelOut], responses={200: {"headers": cursors.HEADERS}},
            summary="List and search the model market (public models and yours) in name order, a page at a time")
def list_models(caller: Caller, ctx: Context, request: Request, response: Response,
                q: str = Query("", max_length=200, description="In the name or the description."),
                task: str = Query("", max_length=64), framework: str = Query("", max_length=64),
                prefix: str = Query("", max_length=64, description="Only names starting with this."),
                owner: str = Query("", max_length=64, description="Only this publisher's models."),
                visibility: str = Query("", description="public or private (default: both)."),
                limit: int = Query(100, ge=1, le=1000, description="Models per page."),
                cursor: str | None = Query(None, description="X-Next-Cursor of the previous page.")) -> list[ModelOut]:
    if visibility and visibility not in model_pages.VISIBILITIES:
        raise ValidationFailed("visibility: expected public or private", field="visibility")
    shown = {"list": "models", "q": q, "task": task, "framework": framework, "prefix": prefix, "owner": owner,
             "visibility": visibility}
    after = cursors.decode(cursor, shown) if cursor else None
    viewer = None if caller.user.is_admin else caller.user.id
    with ctx.store.read() as conn:
        page = model_pages.page(conn, ModelFilters(viewer, prefix, q, task, framework, owner, visibility),
                                after=after, limit=limit)
    cursors.set_headers(response, request, page.total,
                        cursors.encode(page.last, shown) if page.last is not None else None)
    return [_out(m) for m in page.rows]


@router.get("/model-facets", response_model=dict[str, list[str]],
            summary="The tasks and frameworks of the models you can see (the values the list filters take)")
def model_facets(caller: Caller, ctx: Context) -> dict[str, list[str]]:
    with ctx.store.read() as conn:
        return model_pages.facets(conn, None if caller.user.is_admin else caller.user.id)


@router.get("/models/{name}", response_model=ModelOut, summary="Show a model: card, versions and their files")
def get_model(name: str, caller: Caller, ctx: Context) -> ModelOut:
    m = _visible(ctx, caller, name)
    return _out(m, files=True, mounted_by=_mounted_by(ctx, caller, name))


@router.get("/models/{name}/versions/{version}", response_model=ModelVersionOut,
            summary="One version: digest and manifest")
def get_version(name: str, version: str, caller: Caller, ctx: Context) -> ModelVersionOut:
    m = _visible(ctx, caller, name)
    for v in m.versions:
        if v.version == version:
            return _version_out(v, True)
    raise NotFound(f'model "{name}" has no version {version}', code="ModelVersionNotFound")


def _prepare(ctx: Any, caller: Principal, name: str, version: str) -> None:
    """Refuse before any byte is stored: a bad name, another user's model, or an existing version."""
    market.check_name(name)
    market.check_version(version)
    with ctx.store.read() as conn:
        m = model_store.find(conn, name)
    if m is not None:
        _may_change(caller, m)
        if any(v.version == version for v in m.versions):
            raise Conflict(f"{name}@{version} already exists; a version never changes: publish a new one",
                           code="VersionExists")


class ModelQuotaExceeded(PermanentError):
    status = 413
    code = "ModelQuotaExceeded"


def _room(ctx: Any, caller: Principal, adding: int = 0, conn: Any = None) -> int | None:
    """Bytes the caller may still publish (None: an admin, not limited); 413 when ``adding`` does not fit."""
    if caller.user.is_admin:
        return None
    limit = int(ctx.settings.disk.model_quota_gib * 1024**3)
    with contextlib.nullcontext(conn) if conn is not None else ctx.store.read() as c:
        used = model_store.owned_bytes(c, caller.user.id)
    if used + adding > limit or used >= limit:
        raise ModelQuotaExceeded(f"model market quota exceeded: {used} of {limit} bytes used by your models, and "
                                 f"this version holds {adding or 'more'}; delete versions you no longer need, or "
                                 "ask an admin (ARKSERVE_DISK_MODEL_QUOTA_GIB)",
                                 details={"used": used, "limit": limit, "adding": adding})
    return limit - used


def _blobs(ctx: Any) -> market.BlobStore:
    """The blob store a publish writes into, with the free-space floor it must leave (``disk.min_free_mib``)."""
    return market.BlobStore(ctx.settings.data_dir, min_free=ctx.settings.disk.min_free_mib * MIB)


def _record(ctx: Any, caller: Principal, name: str, version: str, card: dict[str, Any],
            manifest: market.Manifest) -> ModelOut:
    digest = market.manifest_digest(manifest)
    with ctx.store.begin() as conn:
        # in the transaction that adds the version: two publishes at once cannot pass it together; the files a
        # refused one stored are young, so only the reconciler's hourly prune removes them (past the grace)
        _room(ctx, caller, sum(int(f["size"]) for f in manifest) or 1, conn)
        m = model_store.find(conn, name)
        if m is None:
            card.setdefault("description", market.readme(market.BlobStore(ctx.settings.data_dir), manifest))
            m = model_store.create(conn, name, caller.user.id, card, bool(card.get("public")))
        else:
            _may_change(caller, m)
            if card:
                model_store.update_model(conn, m.id, **card)
        model_store.add_version(conn, m.id, version, digest, manifest)
        m = model_store.get(conn, name)
    return _out(m, files=True)


@router.post("/models/{name}/versions/{version}", response_model=ModelOut, status_code=201,
             summary="Publish a version from a folder of your network disk (creates the model if new)")
def publish_from_disk(name: str, version: str, body: ModelPublishDisk, caller: Caller, ctx: Context) -> ModelOut:
    card = _card(body, caller)
    _prepare(ctx, caller, name, version)
    folder = market.disk_folder(ctx.settings.data_dir, caller.user.username, body.disk_path)
    blobs = _blobs(ctx)
    holds = market.folder_bytes(blobs, folder)
    _room(ctx, caller, holds)  # what it holds now: refused before a byte is copied
    blobs.check_room(holds)  # and 507 when the platform's disk has not that much room to spare
    manifest = market.publish_dir(blobs, folder)
    return _record(ctx, caller, name, version, card, manifest)


@router.put("/models/{name}/versions/{version}/archive", response_model=ModelOut, status_code=201,
            summary="Publish a version from a tar archive in the body (plain or compressed; streamed to disk)",
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/x-tar": {"schema": {"type": "string", "format": "binary"}}}}})
async def publish_archive(name: str, version: str, request: Request, streamed: StreamingCaller, ctx: Context,
                          description: str | None = Query(None, max_length=65536),
                          task: str | None = Query(None, max_length=64),
                          framework: str | None = Query(None, max_length=64),
                          license: str | None = Query(None, max_length=64),
                          public: bool | None = None) -> ModelOut:
    caller = streamed.principal  # the signature's headers checked; the body's hash is checked as it streams
    body = validated(ModelCard, {"description": description, "task": task, "framework": framework,
                                "license": license, "public": public})  # a 422 naming the field, as a body's
    card = _card(body, caller)
    await run_in_threadpool(_prepare, ctx, caller, name, version)
    room = await run_in_threadpool(_room, ctx, caller)
    cap = None if room is None else room + room // 100 + (1 << 20)  # a compressed archive's own overhead
    declared = int(request.headers.get("content-length") or 0)
    if cap is not None and declared > cap:
        await run_in_threadpool(_room, ctx, caller, declared)  # refused before the body is read
    blobs = _blobs(ctx)
    blobs.check_room(declared)  # 507 before the body is read when the platform's disk has no room for it
    with space_errors():
        blobs.tmp.mkdir(parents=True, exist_ok=True)
        fd, spool = tempfile.mkstemp(dir=blobs.tmp, prefix="upload-")
    digest = BodyHash(streamed.claimed_hash)
    try:
        with space_errors(), os.fdopen(fd, "wb", buffering=0) as out:  # spooled to disk as it comes, never whole
            got, checked = 0, declared
            async for chunk in request.stream():
                digest.update(chunk)
                out.write(chunk)  # a raw file writes all of it (or raises)
                got += len(chunk)
                if cap is not None and got > cap:
                    await run_in_threadpool(_room, ctx, caller, got)  # past the quota: stop reading
                if got > checked:  # a body longer than declared (or undeclared): the floor again, a step ahead
                    checked = got + GROW_STEP  # as a disk upload of unknown size reserves (storage/uploads.py)
                    blobs.check_room(GROW_STEP)
        digest.check()  # a body that is not the one signed publishes nothing
        with open(spool, "rb") as f:
            try:
                manifest = await run_in_threadpool(market.publish_tar, blobs, f, room)
            except market.ArchiveTooLarge as exc:
                await run_in_threadpool(_room, ctx, caller, exc.size)  # 413 with used and limit
                raise
    finally:
        os.unlink(spool)
    return await run_in_threadpool(_record, ctx, caller, name, version, card, manifest)


@router.patch("/models/{name}", response_model=ModelOut,
              summary="Change a model's card (description, task, framework, license) or visibility (admins)")
def patch_model(name: str, body: ModelCard, caller: Caller, ctx: Context) -> ModelOut:
    m = _visible(ctx, caller, name)
    _may_change(caller, m)
    card = body.model_dump(exclude_unset=True, exclude_none=True)
    if "public" in card and card["public"] != m.public and not caller.user.is_admin:
        raise Forbidden("only admins change whether a model is public", code="PublicNeedsAdmin")
    with ctx.store.begin() as conn:
        model_store.update_model(conn, m.id, **card)
        m = model_store.get(conn, name)
    return _out(m, files=True, mounted_by=_mounted_by(ctx, caller, name))


def _refuse_if_mounted(conn: Any, caller: Principal, name: str, version: str | None) -> None:
    """409 while any service mounts it; the caller's own services are named, other users' only counted."""
    rows = service_store.list_all(conn)
    using = services_mounting(rows, name, version)
    if using:
        what = f"{name}@{version}" if version else name
        visible = {s.name for s in rows if caller.user.is_admin or s.owner_id == caller.user.id}
        named = [n for n in using if n in visible]
        others = len(using) - len(named)
        said = ", ".join([*(f"service {n}" for n in named),
                          *([f"{others} service(s) of other users"] if others else [])])
        raise Conflict(f"{what} is mounted by {said}: they must change or be deleted first", code="ModelInUse")


def _collect(ctx: Any) -> None:
    with ctx.store.read() as conn:
        keep = model_store.all_blob_hashes(conn)
    market.BlobStore(ctx.settings.data_dir).collect(keep)


@router.delete("/models/{name}/versions/{version}", status_code=204,
               summary="Delete one version (refused while a service mounts it)")
def delete_version(name: str, version: str, caller: Caller, ctx: Context) -> Response:
    m = _visible(ctx, caller, name)
    _may_change(caller, m)
    if not any(v.version == version for v in m.versions):
        raise NotFound(f'model "{name}" has no version {version}', code="ModelVersionNotFound")
    with ctx.store.begin() as conn:  # checked in the same transaction as the delete
        _refuse_if_mounted(conn, caller, name, version)
        model_store.delete_version(conn, m.id, version)
    _collect(ctx)
    return Response(status_code=204)


@router.delete("/models/{name}", status_code=204,
               summary="Delete a model and all its versions (refused while a service mounts one)")
def delete_model(name: str, caller: Caller, ctx: Context) -> Response:
    m = _visible(ctx, caller, name)
    _may_change(caller, m)
    with ctx.store.begin() as conn:
        _refuse_if_mounted(conn, caller, name, None)
        model_store.delete_model(conn, m.id)
    _collect(ctx)
    return Response(status_code=204)
