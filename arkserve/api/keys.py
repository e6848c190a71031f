"""Access keys: create, list (SK masked), reveal (after re-entering the password), enable/disable, delete.

A user sees and touches only their own keys; an admin sees everyone's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from arkserve.api.logins import check_password, client_of
from arkserve.api.propagation import await_gateways
from arkserve.api.security import Caller, Context, Principal
from arkserve.auth import keys as key_service
from arkserve.auth import passwords
from arkserve.errors import Forbidden, NotFound, Unauthenticated
from arkserve.schemas import KeyCreate, KeyCreated, KeyOut, KeyPatch, RevealOut, RevealRequest
from arkserve.store import keys as key_store
from arkserve.store import users as user_store
from arkserve.store.keys import StoredKey

router = APIRouter(tags=["access keys"])
_MASKED = "*" * 44


def key_out(k: StoredKey) -> KeyOut:
    return KeyOut(access_key=k.access_key, secret_key_masked=_MASKED, username=k.username, enabled=k.enabled,
                  description=k.description, created_at=k.created_at, last_used_at=k.last_used_at)


def _own(ctx: Context, caller: Principal, access_key: str) -> StoredKey:
    with ctx.store.read() as conn:
        stored = key_store.find(conn, access_key)
    # Another user's key looks exactly like a missing one: no probing for key ids.
    if stored is None or not caller.owns(stored.user_id):
        raise NotFound(f'access key "{access_key}" not found', code="KeyNotFound")
    return stored


@router.get("/keys", response_model=list[KeyOut], summary="List access keys (yours; admin: ?all=true)")
def list_keys(caller: Caller, ctx: Context, all: bool = False) -> list[KeyOut]:
    if all:
        caller.require_admin()
    with ctx.store.read() as conn:
        return [key_out(k) for k in key_store.list_keys(conn, None if all else caller.user.id)]


@router.post("/keys", response_model=KeyCreated, status_code=201, summary="Create an access key (SK shown once)")
def create_key(body: KeyCreate, caller: Caller, ctx: Context) -> KeyCreated:
    with ctx.store.begin() as conn:
        owner = caller.user
        if body.username and body.username != caller.user.username:
            if not caller.user.is_admin:
                raise Forbidden("only an admin can issue keys to another user")
            owner = user_store.get(conn, body.username)
        ak, sk = key_service.issue(conn, ctx.master, owner.id, body.description)
        stored = key_store.get(conn, ak)
    await_gateways(ctx)  # the gateway accepts the key as soon as this returns
    return KeyCreated(**key_out(stored).model_dump(), secret_key=sk)


@router.get("/keys/{access_key}", response_model=KeyOut, summary="Show an access key (SK masked)")
def get_key(access_key: str, caller: Caller, ctx: Context) -> KeyOut:
    return key_out(_own(ctx, caller, access_key))


@router.post("/keys/{access_key}/reveal", response_model=RevealOut, summary="Reveal the SK (re-enter password)")
def reveal_key(access_key: str, body: RevealRequest, request: Request, caller: Caller, ctx: Context) -> RevealOut:
    stored = _own(ctx, caller, access_key)
    if not check_password(ctx, client_of(request), caller.user.username,
                          lambda: passwords.verify_password(caller.user.password_hash, body.password), "key reveal"):
        raise Unauthenticated("password is wrong", code="WrongPassword")
    with ctx.store.read() as conn:
        return RevealOut(access_key=stored.access_key, secret_key=key_service.reveal(conn, ctx.master, access_key))


@router.patch("/keys/{access_key}", response_model=KeyOut, summary="Enable or disable an access key")
def patch_key(access_key: str, body: KeyPatch, caller: Caller, ctx: Context) -> KeyOut:
    _own(ctx, caller, access_key)
    with ctx.store.begin() as conn:
        key_store.set_enabled(conn, access_key, body.enabled)
        out = key_out(key_store.get(conn, access_key))
    await_gateways(ctx)  # enabled: accepted from now on; disabled: refused from now on
    return out


@router.delete("/keys/{access_key}", status_code=204, summary="Delete an access key")
def delete_key(access_key: str, caller: Caller, ctx: Context) -> Response:
    _own(ctx, caller, access_key)
    with ctx.store.begin() as conn:
        key_store.remove(conn, access_key)
    await_gateways(ctx)
    return Response(status_code=204)
