"""Console login sessions: log in (cookie + CSRF token), look up, log out."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from arkserve.api.logins import check_password, client_of
from arkserve.api.security import SESSION_COOKIE, Caller, Context
from arkserve.auth import passwords
from arkserve.errors import Unauthenticated
from arkserve.schemas import LoginRequest, SessionOut, WhoAmI
from arkserve.store import sessions as session_store
from arkserve.store import users as user_store

router = APIRouter(tags=["session"])


def _login(ctx: Context, body: LoginRequest, client: str) -> tuple[str, SessionOut]:
    with ctx.store.read() as conn:
        user = user_store.find(conn, body.username)

    def check() -> bool:
        if user is None:
            passwords.burn_time(body.password)
            return False
        return passwords.verify_password(user.password_hash, body.password) and not user.disabled

    if not check_password(ctx, client, body.username, check, "console login") or user is None:
        raise Unauthenticated("wrong username or password", code="LoginFailed")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with ctx.store.begin() as conn:
        sess = session_store.create(conn, token, user.id, csrf, ctx.settings.api.session_ttl_s)
    return token, SessionOut(username=user.username, role=user.role, csrf_token=csrf, expires_at=sess.expires_at)


@router.post("/session", response_model=SessionOut, summary="Log in (console)")
async def login(body: LoginRequest, request: Request, response: Response, ctx: Context) -> SessionOut:
    token, out = await run_in_threadpool(_login, ctx, body, client_of(request))
    response.set_cookie(SESSION_COOKIE, token, max_age=ctx.settings.api.session_ttl_s, httponly=True,
                        samesite="strict", secure=ctx.settings.api.secure_cookies, path="/")
    return out


@router.get("/session", response_model=SessionOut, summary="The current console session")
def current_session(request: Request, caller: Caller, ctx: Context) -> SessionOut:
    token = request.cookies.get(SESSION_COOKIE, "")
    with ctx.store.read() as conn:
        sess = session_store.find(conn, token)
    if sess is None:
        raise Unauthenticated("not logged in with a console session", code="SessionExpired")
    return SessionOut(username=caller.user.username, role=caller.user.role, csrf_token=sess.csrf_token,
                      expires_at=sess.expires_at)


@router.delete("/session", status_code=204, summary="Log out")
def logout(request: Request, response: Response, caller: Caller, ctx: Context) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with ctx.store.begin() as conn:
            session_store.remove(conn, token)
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out


@router.get("/whoami", response_model=WhoAmI, summary="Who the credentials belong to")
def whoami(caller: Caller) -> WhoAmI:
    u = caller.user
    return WhoAmI(id=u.id, username=u.username, role=u.role, disabled=u.disabled, created_at=u.created_at,
                  auth="signature" if caller.via == "signature" else "session", access_key=caller.access_key)
