"""Password checks through the login throttle, and the security events they leave for admins.

Every check of a password against its Argon2 hash (console login, key reveal, password change) goes through
:func:`check_password`: refused at once with 429 + ``Retry-After`` while the account or the client address is
throttled or while ``api.login_concurrency`` hashes already run (``arkserve.auth.throttle``); each failure is
an event admins read at ``GET /api/v1/security/events`` (docs/security.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fastapi import APIRouter, Query, Request

from arkserve.api.context import AppContext
from arkserve.api.security import Caller, Context
from arkserve.auth.throttle import Throttled
from arkserve.errors import TooManyRequests
from arkserve.schemas import SecurityEventOut
from arkserve.store import security_events

router = APIRouter(tags=["security"])


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


def check_password(ctx: AppContext, client: str, username: str, check: Callable[[], bool], what: str) -> bool:
    """Run ``check`` (the hash comparison) unless throttled; count and record the outcome. Blocking: call it
    from a worker thread."""
    try:
        with ctx.logins.attempt(username, client):
            ok = check()
    except Throttled as t:
        if t.why == "busy":
            raise TooManyRequests("too many password checks at once; retry in a second", retry_after_s=1,
                                  code="LoginBusy") from None
        raise TooManyRequests(f"too many failed attempts for this account or from this address; retry in "
                              f"{t.retry_after_s} s", retry_after_s=t.retry_after_s, code="LoginThrottled") from None
    if ok:
        ctx.logins.succeeded(username, client)
        return True
    wait = ctx.logins.failed(username, client)
    message = f"{what}: wrong user name or password"
    if wait > 0:
        message += f"; further attempts delayed {math.ceil(wait)} s"
    with ctx.store.begin() as conn:
        security_events.record(conn, "login_failed", username, client, message,
                               keep_s=ctx.settings.retention_days * 86400)
    return False


@router.get("/security/events", response_model=list[SecurityEventOut],
            summary="Failed logins and password checks, newest first (admin)")
def list_security_events(caller: Caller, ctx: Context, username: str | None = None,
                         limit: int = Query(200, ge=1, le=5000)) -> list[SecurityEventOut]:
    caller.require_admin()
    with ctx.store.read() as conn:
        return [SecurityEventOut(**e) for e in security_events.list_events(conn, username=username, limit=limit)]
