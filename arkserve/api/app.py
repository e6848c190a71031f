"""The API application factory: routers under ``/api/v1``, OpenAPI, the error table, request ids.

The OpenAPI document declares, for each operation, the error answers it can give (all ``ErrorBody``): the ones every
operation shares on the ``/api/v1`` router (401, 403, 422, 503 ``StoreUnavailable``, here) and the rest
(``error_docs.py``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

import arkserve
from arkserve import console
from arkserve.api import (
    async_requests,
    billing,
    canary_routes,
    dav,
    disk,
    disk_uploads,
    error_docs,
    errors,
    head,
    hosts,
    images,
    instance_types,
    keys,
    limits,
    logins,
    metrics,
    models,
    prepaid,
    registry_token,
    services,
    session,
    users,
)
from arkserve.api.context import AppContext
from arkserve.auth.vault import MasterKey
from arkserve.schemas import ErrorBody
from arkserve.settings import Settings
from arkserve.store.db import Store

PREFIX = "/api/v1"


def create_app(settings: Settings, store: Store, master: MasterKey) -> FastAPI:
    app = FastAPI(
        title="arkserve API", version=arkserve.__version__,
        description="Control plane of arkserve: users, access keys, instance types and inference services. "
                    "Programs sign requests with AK/SK (docs/signing.md); the console uses a session cookie.",
        openapi_url=f"{PREFIX}/openapi.json", docs_url=None, redoc_url=None)  # docs: console.mount_api_docs
    app.state.ark = AppContext(settings=settings, store=store, master=master)
    errors.install(app)
    app.add_middleware(limits.BodyLimits, ctx=app.state.ark)  # inside the request-id middleware
    app.add_middleware(errors.RequestIdMiddleware)
    app.add_middleware(head.EndAfterHead)  # outermost: a HEAD answer ends with its head
    api = APIRouter(prefix=PREFIX, responses={
        401: {"description": "not authenticated: MissingAuthorization, InvalidCredential, SignatureMismatch, "
                             "RequestExpired (and the other signature codes, docs/signing.md), SessionExpired, "
                             "WrongPassword, LoginFailed", "model": ErrorBody},
        403: {"description": "not allowed: AccessDenied (an admin's route, another user's thing), CSRFFailed, "
                             "QuotaExceeded, ModelPrivate, PublicNeedsAdmin", "model": ErrorBody},
        422: {"description": "invalid field (ValidationFailed; `field` names it)", "model": ErrorBody},
        503: {"description": "StoreUnavailable: the API cannot reach its store now; retry", "model": ErrorBody}})
    for module in (session, logins, users, keys, instance_types, services, metrics, disk, disk_uploads, models,
                   registry_token, images, billing, prepaid, hosts, async_requests, canary_routes):
        head.answer_head(module.router)
        api.include_router(module.router)
    meta = APIRouter(prefix=PREFIX, tags=["meta"])  # no credentials, no body: none of the shared errors

    @meta.get("/healthz", summary="Liveness of the API process")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": arkserve.__version__,
                             "runtime": settings.runtime.kind})  # scripts check they picked the right platform

    @meta.get("/readyz", summary="Readiness: the API reaches its store (503 StoreUnavailable while it cannot); "
              "for load balancers and Kubernetes readiness probes", responses={
                  503: {"description": "StoreUnavailable: the store cannot be reached", "model": ErrorBody}})
    def readyz() -> JSONResponse:
        with store.read() as conn:  # StoreUnavailable -> 503 {code, message, request_id}
            conn.execute(text("SELECT 1"))
        return JSONResponse({"status": "ready", "version": arkserve.__version__})

    head.answer_head(meta)
    app.include_router(api)
    app.include_router(meta)
    if settings.disk.webdav:
        dav.mount(app, app.state.ark)
    console.mount(app)
    console.mount_api_docs(app, f"{PREFIX}/docs", f"{PREFIX}/openapi.json")
    head.answer_head(app.router)  # the console's pages
    made = app.openapi  # made once, on the first ask (FastAPI keeps it in app.openapi_schema)
    app.openapi = lambda: app.openapi_schema or error_docs.declare_errors(made(), PREFIX)  # type: ignore[method-assign]
    return app

