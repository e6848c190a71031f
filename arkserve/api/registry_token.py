"""The registry's token service (Distribution's ``auth.token`` realm): ``GET /api/v1/registry/token``.

``docker login``/``pull``/``push`` come here with HTTP Basic credentials — a user name and console
password, or an access key as user name and its secret key as password (or, from a Kubernetes node pulling a
replica's image, ``ark-pull-token`` and the pull token the reconciler minted: it is re-issued for at most the
pulls it already holds) — and the scopes they want
(``repository:alice/app:pull,push``). The answer is a short-lived JWT with what ``policy.decide``
grants. Refusals use the registry's error format (``{"errors": [{code, message}]}``, which ``docker``
prints) next to the API's own ``{code, message, request_id}``: 401 for wrong credentials, 403
``DENIED`` for a push (or a lone pull) that is not allowed or over quota.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hmac
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from arkserve.api.context import AppContext
from arkserve.api.errors import error_response
from arkserve.api.logins import check_password, client_of
from arkserve.api.security import Context
from arkserve.auth import passwords
from arkserve.auth.vault import VaultError, unseal
from arkserve.errors import TooManyRequests
from arkserve.registry import config as registry_config
from arkserve.registry.catalogue import Catalogue
from arkserve.registry.names import PUBLIC_NAMESPACE
from arkserve.registry.policy import Decision, Requester, decide, wanted
from arkserve.registry.tokens import PULL_USER, Access, TokenSigner, parse_scope
from arkserve.store import images as image_store
from arkserve.store import keys as key_store
from arkserve.store import users as user_store
from arkserve.store.users import User

router = APIRouter(tags=["images"])
GIB = 1024**3


@functools.lru_cache(maxsize=8)
def signer(data_dir: Path) -> TokenSigner:
    return TokenSigner.from_data_dir(data_dir)


def catalogue(ctx: AppContext) -> Catalogue:
    """A client of the registry for one request (use it in a ``with`` block)."""
    r = ctx.settings.registry
    host = "127.0.0.1" if r.host in ("0.0.0.0", "") else r.host  # noqa: S104 - reach a wildcard listener locally
    data_dir = ctx.settings.data_dir
    return Catalogue(f"http://{host}:{r.port}", signer(data_dir), registry_config.storage_root(data_dir))


def quota_bytes(ctx: AppContext, user: User) -> int:
    with ctx.store.read() as conn:
        own = image_store.quota(conn, user.id)
    return own if own is not None else int(ctx.settings.registry.quota_gib * GIB)


def _registry_error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="arkserve registry"'} if status == 401 else None
    ours = {401: "RegistryLoginFailed", 429: "LoginThrottled"}.get(status, "RegistryAccessDenied")
    return error_response(request, status, ours, message, headers=headers,
                          errors=[{"code": code, "message": message, "detail": None}])


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, ValueError):  # ValueError: a header that is not ASCII (UnicodeDecodeError is one too)
        return None
    return (user, password) if sep else None


def _authenticate(ctx: AppContext, client: str, username: str, password: str) -> User | None:
    """The user of a user name + console password (through the login throttle, like the console's login), or of
    an access key + its secret key."""
    with ctx.store.read() as conn:
        user = user_store.find(conn, username)
        key = None if user is not None else key_store.find(conn, username)
        owner = user_store.get_by_id(conn, key.user_id) if key is not None and key.enabled else None
    if user is not None:
        # a disabled user's right password is a failure too (as at the console): not marked trusted, recorded
        ok = check_password(ctx, client, username,
                            lambda: passwords.verify_password(user.password_hash, password) and not user.disabled,
                            "registry login")
        return user if ok else None
    if key is None or owner is None or owner.disabled:
        passwords.burn_time(password)
        return None
    try:
        secret = unseal(ctx.master, key.sealed, key.access_key).decode()
    except VaultError:
        return None
    return owner if hmac.compare_digest(secret.encode(), password.encode()) else None


def _token_answer(ctx: AppContext, subject: str, granted: list[Access], until: int | None = None) -> JSONResponse:
    ttl = ctx.settings.registry.token_ttl_s
    if until is not None:
        ttl = max(1, min(ttl, until - int(time.time())))
    token = signer(ctx.settings.data_dir).mint(subject, granted, ttl_s=ttl)
    issued = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return JSONResponse({"token": token, "access_token": token, "expires_in": ttl, "issued_at": issued})


def _pull_token(request: Request, ctx: AppContext, token: str, scopes: list[str]) -> JSONResponse:
    """A node pulling with a replica's pull token: the pulls it holds that were asked for, nothing more."""
    held = signer(ctx.settings.data_dir).verify(token)
    if held is None:
        return _registry_error(request, 401, "UNAUTHORIZED", "the pull token is invalid or expired; the reconciler "
                                                             "issues a fresh one at the replica's next start")
    pulls = {(a.type, a.name) for a in held.access if "pull" in a.actions}
    asked = [a for s in scopes for part in s.split() if (a := parse_scope(part)) is not None]
    granted = [Access(a.type, a.name, ("pull",)) for a in asked if (a.type, a.name) in pulls and "pull" in a.actions]
    if asked and not granted:
        return _registry_error(request, 403, "DENIED", "a pull token allows pulling only the image it was issued for")
    # never past the pull token's own expiry: else each answer, shown again as a pull token, would extend it forever
    return _token_answer(ctx, held.subject, granted, until=held.expires_at)


def _over_quota(ctx: AppContext, user: User) -> str:
    limit = quota_bytes(ctx, user)
    with catalogue(ctx) as cat:
        used = cat.namespace_bytes(user.username)
    if used < limit:
        return ""
    return (f"storage quota exceeded: {user.username}/ holds {used / GIB:.2f} GiB of {limit / GIB:.2f} GiB; delete "
            "tags or repositories (arkserve image delete) and ask an admin to collect garbage, or for more quota")


def _is_public(ctx: AppContext, name: str) -> bool:
    with ctx.store.read() as conn:
        repo = image_store.find(conn, name)
    return repo is not None and repo.public


@router.get("/registry/token", summary="Registry token service (Distribution auth.token): Basic credentials "
            "(user + password, or AK + SK) in, a JWT for the scopes allowed out", responses={
                401: {"description": "wrong credentials (registry error format)"},
                403: {"description": "a push or pull that is not allowed, or over quota"}})
def registry_token(request: Request, ctx: Context, service: str = "",
                   scope: Annotated[list[str] | None, Query()] = None, account: str = "") -> JSONResponse:
    creds = _basic(request.headers.get("authorization"))
    if creds is None:
        return _registry_error(request, 401, "UNAUTHORIZED", "log in with your user name and password, or your "
                                                             "access key and secret key")
    if creds[0] == PULL_USER:
        return _pull_token(request, ctx, creds[1], scope or [])
    try:
        user = _authenticate(ctx, client_of(request), *creds)
    except TooManyRequests as exc:
        return _registry_error(request, 429, "TOOMANYREQUESTS", exc.message)
    if user is None:
        return _registry_error(request, 401, "UNAUTHORIZED", "wrong user name or password (or access key and "
                                                             "secret key)")
    who = Requester(user.username, user.is_admin)
    asked = [a for s in scope or [] for part in s.split() if (a := parse_scope(part)) is not None]
    decisions: list[Decision] = []
    for a in asked:
        # the quota is checked for every scope that would be granted push: "pull,push", "push" and "*" alike
        over = _over_quota(ctx, user) if "push" in wanted(a) and a.name.startswith(f"{user.username}/") else ""
        decisions.append(decide(who, a, is_public=lambda n: _is_public(ctx, n), over_quota=over))
    refused = [d for d in decisions if d.push_refused] or (
        decisions if decisions and all(d.granted is None for d in decisions) else [])
    if refused:
        return _registry_error(request, 403, "DENIED", refused[0].refusal)
    granted: list[Access] = [d.granted for d in decisions if d.granted is not None]
    with ctx.store.begin() as conn:
        for g in granted:
            if "push" in g.actions:
                image_store.ensure(conn, g.name, user.id, public=g.name.startswith(PUBLIC_NAMESPACE + "/"))
    return _token_answer(ctx, user.username, granted)
