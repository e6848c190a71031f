"""Prepaid instances (buy, list, auto-renew on/off) and per-user quotas (admin sets; everyone reads their own).

A purchase is refused with 402 ``InsufficientBalance`` when the balance is short and 403 ``QuotaExceeded`` past
the ``max_prepaid`` quota; either way nothing is written.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import Connection, select

from arkserve.api.billing import target_user
from arkserve.api.context import AppContext
from arkserve.api.security import Caller, Context
from arkserve.billing import accounts, guard, prepaid
from arkserve.billing.metering import from_micro
from arkserve.billing.schemas import PrepaidFreeOut, PrepaidIn, PrepaidOut, PrepaidPatch, QuotaIn, QuotaOut
from arkserve.errors import NotFound, ValidationFailed
from arkserve.schemas import MAX_INT32, ErrorBody
from arkserve.store import instance_types
from arkserve.store import users as user_store
from arkserve.store.tables import replicas, services
from arkserve.store.users import User

router = APIRouter(tags=["billing"], responses={
    402: {"description": "InsufficientBalance: the balance does not cover it", "model": ErrorBody},
    403: {"description": "QuotaExceeded: over the user's quota; AccessDenied: not allowed", "model": ErrorBody}})


def _in_use(conn: Connection, user_id: int) -> dict[str, int]:
    """The user's replicas on prepaid instances, per instance type, counted as placement counts them
    (``store.hosts.allocations``): every placed replica billed prepaid, whatever its state (a crash-looping one
    keeps its placement, so its instance); a pending one that gave its placement up holds none."""
    col, itype = replicas.c.get("billing"), replicas.c.get("instance_type")
    if col is None or itype is None:
        return {}
    out: dict[str, int] = {}
    q = (select(itype).join(services, services.c.id == replicas.c.service_id)
         .where(services.c.owner_id == user_id, col == "prepaid", replicas.c.node != ""))
    for (name,) in conn.execute(q):
        out[str(name)] = out.get(str(name), 0) + 1
    return out


def _out(conn: Connection, row: dict[str, Any], names: dict[int, str]) -> PrepaidOut:
    return PrepaidOut(id=row["id"], username=names.get(row["user_id"], ""), instance_type=row["instance_type"],
                      count=row["count"], in_use=min(row["count"], _in_use(conn, row["user_id"]).get(
                          row["instance_type"], 0)) if row["status"] == "active" else 0,
                      period=row["period"], starts_at=row["starts_at"], ends_at=row["ends_at"],
                      auto_renew=row["auto_renew"], status=row["status"],
                      price=round(from_micro(row["price_micro"]), 2))


@router.get("/billing/prepaid", response_model=list[PrepaidOut],
            summary="Prepaid instances (yours; admin: ?user=NAME or ?all=true); active only unless ?expired=true")
def list_prepaid(caller: Caller, ctx: Context, user: str | None = None, all: bool = False,
                 expired: bool = False) -> list[PrepaidOut]:
    if all:
        caller.require_admin()
    who = None if all else target_user(ctx, caller, user).id
    with ctx.store.read() as conn:
        names = {u.id: u.username for u in user_store.list_all(conn)}
        return [_out(conn, r, names) for r in prepaid.list_for(conn, who, active_only=not expired)]


@router.get("/billing/prepaid-free", response_model=list[PrepaidFreeOut],
            summary="Your active prepaid instances per type: held, in use (live replicas on them), free")
def prepaid_free(caller: Caller, ctx: Context, user: str | None = None) -> list[PrepaidFreeOut]:
    who = target_user(ctx, caller, user)
    with ctx.store.read() as conn:
        held = prepaid.active_counts(conn, time.time()).get(who.id, {})
        used = _in_use(conn, who.id)
    return [PrepaidFreeOut(instance_type=t, held=n, in_use=min(n, used.get(t, 0)), free=max(0, n - used.get(t, 0)))
            for t, n in sorted(held.items())]


@router.post("/billing/prepaid", response_model=PrepaidOut, status_code=201,
             summary="Buy prepaid instances of a type for a month or a year, paid from the balance")
def buy_prepaid(body: PrepaidIn, caller: Caller, ctx: Context) -> PrepaidOut:
    who = target_user(ctx, caller, body.username)
    b = ctx.settings.billing
    now = time.time()
    with ctx.store.begin() as conn:
        try:
            itype = instance_types.get(conn, body.instance_type)
        except NotFound:
            raise ValidationFailed(f'instance_type: unknown instance type "{body.instance_type}"',
                                   field="instance_type") from None
        guard.admit_prepaid(conn, who.id, body.count, now)
        row = prepaid.buy(conn, who.id, body.instance_type, float(itype["price_per_hour"]), count=body.count,
                          period=body.period, auto_renew=body.auto_renew, now=now, discount=b.prepaid_discount,
                          currency=b.currency)
        return _out(conn, row, {who.id: who.username})


@router.patch("/billing/prepaid/{prepaid_id}", response_model=PrepaidOut, summary="Turn auto-renew on or off")
def patch_prepaid(prepaid_id: Annotated[int, Path(ge=1, le=MAX_INT32)], body: PrepaidPatch, caller: Caller,
                  ctx: Context) -> PrepaidOut:
    with ctx.store.begin() as conn:
        row = prepaid.get(conn, prepaid_id)
        if not caller.owns(row["user_id"]):
            raise NotFound(f"prepaid instance #{prepaid_id} not found", code="PrepaidNotFound")
        prepaid.set_auto_renew(conn, prepaid_id, body.auto_renew)
        owner = user_store.get_by_id(conn, row["user_id"])
        return _out(conn, prepaid.get(conn, prepaid_id), {owner.id: owner.username})


def quota_out(ctx: AppContext, user: User) -> QuotaOut:
    with ctx.store.read() as conn:
        limits = accounts.get(conn, user.id)
        used_replicas, used_gpus = accounts.desired_use(conn, user.id)
        held = prepaid.held_count(conn, user.id, time.time())
    return QuotaOut(username=user.username, max_replicas=limits["max_replicas"], max_gpus=limits["max_gpus"],
                    max_prepaid=limits["max_prepaid"], used_replicas=used_replicas, used_gpus=used_gpus,
                    used_prepaid=held)


@router.get("/quotas/{username}", response_model=QuotaOut, summary="A user's quotas and use (yours; admin: any)")
def get_quota(username: str, caller: Caller, ctx: Context) -> QuotaOut:
    return quota_out(ctx, target_user(ctx, caller, username))


@router.put("/quotas/{username}", response_model=QuotaOut,
            summary="Set a user's quotas (admin); a field left out or null is unlimited")
def set_quota(username: str, body: QuotaIn, caller: Caller, ctx: Context) -> QuotaOut:
    caller.require_admin()
    with ctx.store.begin() as conn:
        user = user_store.get(conn, username)
        accounts.set_limits(conn, user.id, body.model_dump(), time.time())
    return quota_out(ctx, user)
