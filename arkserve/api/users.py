"""Users: the admin creates, disables, re-roles and deletes them; everyone changes their own password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from arkserve.api.logins import check_password, client_of
from arkserve.api.security import Caller, Context
from arkserve.auth import passwords
from arkserve.errors import Conflict, Unauthenticated
from arkserve.schemas import PasswordChange, UserCreate, UserOut, UserPatch
from arkserve.store import sessions as session_store
from arkserve.store import users as user_store
from arkserve.store.users import User

router = APIRouter(tags=["users"])


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


def _guard_last_admin(ctx: Context, target: User, *, losing_admin: bool) -> None:
    if losing_admin and target.is_admin and not target.disabled:
        with ctx.store.read() as conn:
            if user_store.count_admins(conn) <= 1:
                raise Conflict("the last active admin cannot be disabled, demoted or deleted", code="LastAdmin")


@router.patch("/users/{username}", response_model=UserOut, summary="Disable/enable, change role or password (admin)")
def patch_user(username: str, body: UserPatch, caller: Caller, ctx: Context) -> UserOut:
    caller.require_admin()
    with ctx.store.read() as conn:
        target = user_store.get(conn, username)
    _guard_last_admin(ctx, target, losing_admin=bool(body.disabled) or body.role == "user")
    hashed = None
    if body.password is not None:
        passwords.check_policy(body.password)
        hashed = passwords.hash_password(body.password)
    with ctx.store.begin() as conn:
        if body.disabled is not None:
            user_store.set_disabled(conn, target.id, body.disabled)
            if body.disabled:
                session_store.remove_for_user(conn, target.id)
        if body.role is not None:
            user_store.set_role(conn, target.id, body.role)
        if hashed is not None:
            user_store.set_password(conn, target.id, hashed)
            session_store.remove_for_user(conn, target.id)
        return user_out(user_store.get_by_id(conn, target.id))


@router.delete("/users/{username}", status_code=204, summary="Delete a user and their keys (admin)")
def delete_user(username: str, caller: Caller, ctx: Context) -> Response:
    caller.require_admin()
    with ctx.store.read() as conn:
        target = user_store.get(conn, username)
    if target.id == caller.user.id:
        raise Conflict("you cannot delete your own account", code="SelfDelete")
    _guard_last_admin(ctx, target, losing_admin=True)
    with ctx.store.begin() as conn:
        user_store.remove(conn, target.id)
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
    return Response(status_code=204)
