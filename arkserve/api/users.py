"""Users: the admin creates, disables, re-roles and deletes them; everyone changes their own password.

Deleting a user is refused (409 ``UserOwnsResources``) while they own services, models or images: those are
deleted first, through their own commands. Their access keys, sessions, quotas, billing records and async
requests go with the user; their network disk is removed once the deletion has committed
(:mod:`arkserve.storage.removal`), so that nothing of it passes to a later account of the same name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request, Response
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from arkserve.api.logins import check_password, client_of
from arkserve.api.propagation import await_gateways
from arkserve.api.security import Caller, Context
from arkserve.auth import passwords
from arkserve.errors import ArkserveError, Conflict, Unauthenticated, listed
from arkserve.registry import config as registry_config
from arkserve.schemas import PasswordChange, UserCreate, UserOut, UserPatch
from arkserve.storage.disk import user_root
from arkserve.storage.removal import remove_user_disk
from arkserve.store import sessions as session_store
from arkserve.store import users as user_store
from arkserve.store.users import User

router = APIRouter(tags=["users"])
log = logging.getLogger(__name__)


def user_out(u: User) -> UserOut:
    return UserOut(id=u.id, username=u.username, role=u.role, disabled=u.disabled, created_at=u.created_at)


@router.get("/users", response_model=list[UserOut], summary="List users (admin)")
def list_users(caller: Caller, ctx: Context) -> list[UserOut]:
    caller.require_admin()
    with ctx.store.read() as conn:
        return [user_out(u) for u in user_store.list_all(conn)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user (admin)")
def create_user(body: UserCreate, caller: Caller, ctx: Context) -> UserOut:
    caller.require_admin()
    passwords.check_policy(body.password)
    hashed = passwords.hash_password(body.password)
    with ctx.store.begin() as conn:
        return user_out(user_store.create(conn, body.username, hashed, body.role))


@router.get("/users/{username}", response_model=UserOut, summary="Show a user (admin, or yourself)")
def get_user(username: str, caller: Caller, ctx: Context) -> UserOut:
    if username != caller.user.username:
        caller.require_admin()
    with ctx.store.read() as conn:
        return user_out(user_store.get(conn, username))


def _guard_last_admin(conn: Connection, target: User, *, losing_admin: bool) -> None:
    """Inside the write transaction that changes ``target``: the active admins are counted with their rows
    locked, so concurrent demotions cannot each see another admin left."""
    if losing_admin and set(user_store.lock_active_admins(conn)) <= {target.id}:
        raise Conflict("the last active admin cannot be disabled, demoted or deleted", code="LastAdmin")


def _guard_self(body: UserPatch) -> None:
    """An admin does not lock themselves out by one call: another admin disables or demotes them."""
    if body.disabled:
        raise Conflict("you cannot disable your own account (another admin can)", code="SelfDisable")
    if body.role == "user":
        raise Conflict("you cannot take away your own admin role (another admin can)", code="SelfDemote")


@router.patch("/users/{username}", response_model=UserOut, summary="Disable/enable, change role or password (admin); "
              "not to disable or demote yourself", responses={
                  409: {"description": "the last active admin (LastAdmin), or your own account disabled "
                                       "(SelfDisable) or demoted (SelfDemote)"}})
def patch_user(username: str, body: UserPatch, caller: Caller, ctx: Context) -> UserOut:
    caller.require_admin()
    with ctx.store.read() as conn:
        target = user_store.get(conn, username)
    hashed = None
    if body.password is not None:
        passwords.check_policy(body.password)
        hashed = passwords.hash_password(body.password)
    with ctx.store.begin() as conn:
        _guard_last_admin(conn, target, losing_admin=bool(body.disabled) or body.role == "user")
        if target.id == caller.user.id:
            _guard_self(body)
        if body.disabled is not None:
            user_store.set_disabled(conn, target.id, body.disabled)
            if body.disabled:
                session_store.remove_for_user(conn, target.id)
        if body.role is not None:
            user_store.set_role(conn, target.id, body.role)
        if hashed is not None:
            user_store.set_password(conn, target.id, hashed)
            session_store.remove_for_user(conn, target.id)
        out = user_out(user_store.get_by_id(conn, target.id))
    await_gateways(ctx)  # a disabled or demoted user's keys stop working at the gateways before we answer
    return out


def _images_of(data_dir: Path, username: str) -> list[str]:
    """The repositories of ``username``'s registry namespace that still hold a tag (read from the registry's
    storage layout, so the answer needs no running registry)."""
    repos = registry_config.storage_root(data_dir) / "docker/registry/v2/repositories"
    links = (repos / username).glob("**/_manifests/tags/*/current/link")
    return sorted({link.parents[4].relative_to(repos).as_posix() for link in links})


HOW_TO_DELETE = {"services": "arkserve service delete NAME --wait", "models": "arkserve model delete NAME",
                 "images": "arkserve image delete NAME"}


def _owns_resources(username: str, owned: dict[str, list[str]]) -> Conflict:
    what = "; ".join(f"{kind} {listed(items)}" for kind, items in owned.items())
    how = ", ".join(HOW_TO_DELETE[kind] for kind in owned)
    return Conflict(f'user "{username}" still owns {what}: delete them first ({how}; as an admin, or as the user), '
                    "then delete the user", code="UserOwnsResources",
                    details={"owned": {kind: len(items) for kind, items in owned.items()}})


@router.delete("/users/{username}", status_code=204, summary="Delete a user, their keys and their network disk "
               "(admin); refused while they own services, models or images", responses={
                   409: {"description": "your own account, the last admin, or a user who still owns services, "
                                        "models or images (UserOwnsResources)"}})
def delete_user(username: str, caller: Caller, ctx: Context) -> Response:
    caller.require_admin()
    with ctx.store.read() as conn:
        target = user_store.get(conn, username)
    if target.id == caller.user.id:
        raise Conflict("you cannot delete your own account", code="SelfDelete")
    images = _images_of(ctx.settings.data_dir, target.username)
    with ctx.store.begin() as conn:
        _guard_last_admin(conn, target, losing_admin=True)
        owned = user_store.owned(conn, target.id)
        if images:
            owned["images"] = images
        if owned:
            raise _owns_resources(target.username, owned)
        try:
            with conn.begin_nested():
                user_store.remove(conn, target.id)
        except IntegrityError:  # a service or model created meanwhile (PostgreSQL: another transaction)
            owned = user_store.owned(conn, target.id)
            if owned:
                raise _owns_resources(target.username, owned) from None
            raise Conflict(f'user "{target.username}" is still referred to by something created meanwhile; '
                           "try again", code="UserOwnsResources") from None
    # committed: take the disk away from the name at once, before it can be given to a new account
    try:
        remove_user_disk(ctx.settings.data_dir, target.username)
    except OSError as exc:
        log.exception("user %s deleted, but not their network disk", target.username)
        raise ArkserveError(f'user "{target.username}" was deleted, but their network disk could not be moved '
                            f"away ({exc}): remove {user_root(ctx.settings.data_dir, target.username)} by hand "
                            "before creating a user of that name", code="DiskNotRemoved") from exc
    await_gateways(ctx)
    return Response(status_code=204)


@router.post("/me/password", status_code=204, summary="Change your own password")
def change_password(body: PasswordChange, request: Request, caller: Caller, ctx: Context) -> Response:
    if not check_password(ctx, client_of(request), caller.user.username,
                          lambda: passwords.verify_password(caller.user.password_hash, body.current_password),
                          "password change"):
        raise Unauthenticated("current password is wrong", code="WrongPassword")
    passwords.check_policy(body.new_password, "new_password")
    hashed = passwords.hash_password(body.new_password)
    with ctx.store.begin() as conn:
        user_store.set_password(conn, caller.user.id, hashed)
        # a stolen session must not outlive the password: every other session ends (the caller's stays)
        session_store.remove_for_user(conn, caller.user.id, keep=caller.session_token)
    return Response(status_code=204)
