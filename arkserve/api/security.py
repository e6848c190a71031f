"""Who is calling: an AK/SK signature (programs) or a console session cookie with CSRF token.

Signed requests are verified with the same pure verifier as the gateway
(``arkserve.auth.signing``), over the raw path and query as received.
"""

from __future__ import annotations

import hmac
import time
import weakref
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from arkserve.api.context import AppContext, get_context
from arkserve.auth import signing
from arkserve.auth.vault import VaultError, unseal
from arkserve.errors import Forbidden, Unauthenticated
from arkserve.store import keys as key_store
from arkserve.store import sessions as session_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.users import User

SESSION_COOKIE = "ark_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    user: User
    via: str  # "signature" | "session"
    access_key: str | None = None
    session_token: str | None = field(default=None, repr=False)  # via a session: its token (never logged)

    def owns(self, owner_id: int) -> bool:
        """Whether the caller may see something owned by ``owner_id`` (its owner, or any admin).

        Callers answer 404 otherwise: another user's object looks exactly like a missing one."""
        return owner_id == self.user.id or self.user.is_admin

    def require_admin(self) -> None:
        if not self.user.is_admin:
            raise Forbidden("this action needs the admin role")


def _raw_url(request: Request) -> str:
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return (raw + b"?" + query).decode("latin-1") if query else raw.decode("latin-1")


def _key_secret(ctx: AppContext, access_key: str) -> tuple[bytes, User] | None:
    with ctx.store.read() as conn:
        stored = key_store.find(conn, access_key)
        if stored is None or not stored.enabled:
            return None
        user = user_store.get_by_id(conn, stored.user_id)
    if user.disabled:
        return None
    try:
        secret = signing.decode_secret(unseal(ctx.master, stored.sealed, access_key).decode())
    except (VaultError, ValueError):
        return None
    return secret, user


_VERIFIED = "ark_verified"  # request.state: (Verified, User) of a signature checked before the body was read


async def _signed_headers(request: Request, ctx: AppContext, header: str) -> tuple[signing.Verified, User]:
    """The signature's headers checked (everything but the body's hash): who signed, or a SignatureError."""
    parsed = signing.parse_authorization(header)
    found = await run_in_threadpool(_key_secret, ctx, parsed.access_key)
    verified = signing.verify(
        method=request.method, url=_raw_url(request), headers=dict(request.headers),
        lookup=lambda ak: found[0] if found is not None and ak == parsed.access_key else None,
        now=time.time(), skew_s=ctx.settings.api.clock_skew_s)
    assert found is not None  # verify() raised InvalidCredential otherwise
    return verified, found[1]


async def _by_signature(request: Request, ctx: AppContext, header: str) -> Principal:
    early: tuple[signing.Verified, User] | None = getattr(request.state, _VERIFIED, None)
    verified, user = early if early is not None else await _signed_headers(request, ctx, header)
    body = await request.body()
    signing.check_payload(verified.content_hash, signing.content_hash(body), len(body))
    if time.monotonic() - _touched.get(ctx.store, {}).get(verified.access_key, -_TOUCH_EVERY_S) >= _TOUCH_EVERY_S:
        await run_in_threadpool(_touch, ctx, verified.access_key)
    return Principal(user, "signature", verified.access_key)


async def authenticate_before_body(request: Request, ctx: AppContext) -> None:
    """Refuse a request whose credentials fail before its body is read (``arkserve.api.limits``).

    A signature's headers are verified here (the body's hash is checked when the route reads the body);
    a session cookie is checked whole; a request with neither is refused. Another ``Authorization``
    scheme (the registry's Basic) is left to its route."""
    header = request.headers.get("authorization")
    if header is not None:
        if header.startswith("HMAC-SHA256"):
            setattr(request.state, _VERIFIED, await _signed_headers(request, ctx, header))
        return
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(_by_session, ctx, token, request.method, request.headers.get(CSRF_HEADER))
        return
    raise signing.MissingAuthorization(_UNSIGNED)


# A key's last use is written at most once a minute (the store skips fresher rows too): a signed GET then
# opens no write transaction, which on SQLite would queue it behind every writer for the write lock.
_TOUCH_EVERY_S = 60.0
_touched: weakref.WeakKeyDictionary[Store, dict[str, float]] = weakref.WeakKeyDictionary()  # key -> written at


def _touch(ctx: AppContext, access_key: str) -> None:
    with ctx.store.begin() as conn:
        key_store.touch(conn, {access_key}, min_interval_s=_TOUCH_EVERY_S)
    _touched.setdefault(ctx.store, {})[access_key] = time.monotonic()


def _by_session(ctx: AppContext, token: str, method: str, csrf: str | None) -> Principal:
    with ctx.store.read() as conn:
        sess = session_store.find(conn, token)
        user = user_store.get_by_id(conn, sess.user_id) if sess else None
    if sess is None or user is None or user.disabled:
        raise Unauthenticated("session expired or logged out; log in again", code="SessionExpired")
    if method not in _SAFE_METHODS and not (csrf and hmac.compare_digest(csrf.encode(), sess.csrf_token.encode())):
        raise Forbidden("missing or wrong X-CSRF-Token header", code="CSRFFailed")  # bytes: any header is comparable
    return Principal(user, "session", session_token=token)


async def principal(request: Request, ctx: Annotated[AppContext, Depends(get_context)]) -> Principal:
    header = request.headers.get("authorization")
    if header is not None:
        return await _by_signature(request, ctx, header)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        return await run_in_threadpool(_by_session, ctx, token, request.method, request.headers.get(CSRF_HEADER))
    raise signing.MissingAuthorization(_UNSIGNED)


_UNSIGNED = "request is not signed: send an AK/SK signature (see docs/signing.md) or log in"


Caller = Annotated[Principal, Depends(principal)]
Context = Annotated[AppContext, Depends(get_context)]
