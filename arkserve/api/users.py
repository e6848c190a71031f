"""Users: the admin creates, disables, re-roles and deletes them; everyone changes their own password.

Deleting a user is refused (409 ``UserOwnsResources``) while they own services, models or images (a tag in their
registry namespace): those are deleted first, through their own commands. Their access keys, sessions, quotas,
billing records and async requests go with the user; their network disk (:mod:`arkserve.storage.removal`) and
what is left of their registry namespace (untagged manifests, layer links, unfinished uploads: ``image gc`` then
frees the blobs) are removed once the deletion has committed, so that nothing of them passes to a later account
of the same name.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
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
        user = user_store.create(conn, body.username, hashed, body.role)  # 409 UserExists before anything else
        # before the account exists for anyone: a registry namespace under the name is a deleted user's,
        # refilled by a token of theirs that outlived the deletion (up to registry.token_ttl_s), or left by a
        # deletion before namespaces were removed with their user; none of it is the new user's
        try:
            _remove_namespace(ctx.settings.data_dir, body.username)
        except OSError as exc:
            raise ArkserveError(f"a registry namespace of an earlier user \"{body.username}\" is left and could not "
                                f"be moved away ({exc}): remove {_namespace(ctx.settings.data_dir, body.username)} "
                                "by hand, then create the user", code="NamespaceNotRemoved") from exc
        return user_out(user)


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


def _namespace(data_dir: Path, username: str) -> Path:
    return registry_config.storage_root(data_dir) / "docker/registry/v2/repositories" / username


def _images_of(data_dir: Path, username: str) -> list[str]:
    """The repositories of ``username``'s registry namespace that still hold a tag (read from the registry's
    storage layout, so the answer needs no running registry). Untagged manifests do not count: they go with
    the user (``_remove_namespace``)."""
    repos = _namespace(data_dir, username).parent
    links = (repos / username).glob("**/_manifests/tags/*/current/link")
    return sorted({link.parents[4].relative_to(repos).as_posix() for link in links})


def _remove_namespace(data_dir: Path, username: str) -> None:
    """Take ``username``'s registry namespace away from that name at once (a rename into ``<registry>/.trash/``,
    outside the registry's repositories: nobody can pull from it any more, nor does a later account of the name
    count it), then delete it with whatever an earlier interrupted removal left there. ``image gc`` frees the
    blobs only it linked."""
    trash = registry_config.storage_root(data_dir) / ".trash"
    trash.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):  # never pushed
        _namespace(data_dir, username).rename(trash / f"{username}.{secrets.token_hex(8)}")
    for left in trash.iterdir():
        shutil.rmtree(left, ignore_errors=True)
        if left.exists():
            log.warning("could not remove %s from the registry's trash; the next user deletion tries again", left)


HOW_TO_DELETE = {"services": "arkserve service delete NAME --wait", "models": "arkserve model delete NAME",
                 "images": "arkserve image delete NAME"}


def _owns_resources(username: str, owned: dict[str, list[str]]) -> Conflict:
    what = "; ".join(f"{kind} {listed(items)}" for kind, items in owned.items())
    how = ", ".join(HOW_TO_DELETE[kind] for kind in owned)
    return Conflict(f'user "{username}" still owns {what}: delete them first ({how}; as an admin, or as the user), '
                    "then delete the user", code="UserOwnsResources",
                    details={"owned": {kind: len(items) for kind, items in owned.items()}})


@router.delete("/users/{username}", status_code=204, summary="Delete a user, their keys, their network disk and "
               "their registry namespace (admin); refused while they own services, models or tagged images",
               responses={
                   409: {"description": "your own account (SelfDelete), the last admin (LastAdmin), or a user who "
                                        "still owns services, models or images (UserOwnsResources)"}})
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
    try:  # their untagged manifests and unfinished uploads: no pull by digest, no quota use for the next one
        _remove_namespace(ctx.settings.data_dir, target.username)
    except OSError as exc:
        log.exception("user %s deleted, but not their registry namespace", target.username)
        raise ArkserveError(f'user "{target.username}" was deleted, but their registry namespace could not be moved '
                            f"away ({exc}): remove {_namespace(ctx.settings.data_dir, target.username)} by hand "
                            "before creating a user of that name", code="NamespaceNotRemoved") from exc
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
