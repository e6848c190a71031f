"""The canary's endpoints: promote it to stable, or roll it back (starting one is a service PATCH with
``canary``; see ``api/canary.py`` and docs/canary.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from arkserve.api import canary
from arkserve.api.security import Caller, Context
from arkserve.api.services import service_out, visible_service
from arkserve.schemas import ErrorBody, ServiceOut
from arkserve.store import services as service_store

router = APIRouter(tags=["services"])
_NO_CANARY: dict[int | str, dict[str, Any]] = {
    409: {"description": "NoCanary: the service has no canary", "model": ErrorBody}}


@router.post("/services/{name}/canary/promote", response_model=ServiceOut, responses=_NO_CANARY,
             summary="Promote the canary: it becomes the stable revision (100 %), the old replicas drain")
def promote(name: str, caller: Caller, ctx: Context) -> ServiceOut:
    svc = visible_service(ctx, caller, name)
    with ctx.store.begin() as conn:
        locked = service_store.get_for_update(conn, svc.name, svc.owner_id)
        canary.promote(conn, ctx.settings, caller.user.username, locked)
        svc = service_store.get(conn, name)
        reps = service_store.list_replicas(conn, svc.id)
    return service_out(ctx.settings, svc, reps)


@router.post("/services/{name}/canary/rollback", response_model=ServiceOut, responses=_NO_CANARY,
             summary="Roll the canary back: every request to the stable revision, the canary's replicas drain")
def rollback(name: str, caller: Caller, ctx: Context) -> ServiceOut:
    svc = visible_service(ctx, caller, name)
    with ctx.store.begin() as conn:
        canary.rollback(conn, caller.user.username, service_store.get_for_update(conn, svc.name, svc.owner_id))
        svc = service_store.get(conn, name)
        reps = service_store.list_replicas(conn, svc.id)
    return service_out(ctx.settings, svc, reps)
