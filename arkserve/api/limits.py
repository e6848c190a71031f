"""Request bodies on the API: a size limit checked before reading, a pause limit, and credentials first.

For every route but the upload routes (which stream to disk under their own limits: ``EXEMPT``):
- a ``Content-Length`` over ``api.max_body_bytes`` is answered 413 at once, nothing of the body read;
- a chunked body is counted as it arrives and answered 413 as soon as it passes the limit;
- a pause longer than ``api.body_timeout_s`` between body bytes is answered 408;
- a request that carries a body must show its credentials before the body is read (``PUBLIC`` routes
  excepted): an unsigned, badly signed or expired-session request gets its 401 without the body being read.
Each of these answers closes the connection, so the unread rest of a body is never read either.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arkserve.api import security
from arkserve.api.context import AppContext
from arkserve.api.errors import error_response
from arkserve.auth.signing import SignatureError
from arkserve.errors import ArkserveError

EXEMPT = ("/api/v1/disk/", "/api/v1/models/", "/dav/")
PUBLIC = frozenset({("POST", "/api/v1/session")})  # routes that take a body before anyone is known
_CLOSE = {"Connection": "close"}


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body larger than {limit} bytes", headers=_CLOSE)


class BodyLimits:
    """ASGI middleware enforcing the rules of the module's docstring (inside the request-id middleware)."""

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        api = self.ctx.settings.api
        limit = api.max_body_bytes
        length, chunked = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        request = Request(scope)
        if length is not None and length > limit:
            exc = too_large(limit)
            await error_response(request, 413, "PayloadTooLarge", exc.detail, headers=_CLOSE)(scope, receive, send)
            return
        has_body = chunked or bool(length)
        if has_body and path.startswith("/api/") and (scope["method"], path) not in PUBLIC:
            try:
                await security.authenticate_before_body(request, self.ctx)
            except (SignatureError, ArkserveError) as err:
                headers = {**_CLOSE, **({"WWW-Authenticate": "HMAC-SHA256"} if err.status == 401 else {})}
                await error_response(request, err.status, err.code, err.message, headers=headers)(
                    scope, receive, send)
                return
        seen, done = 0, False

        async def bounded() -> Message:
            nonlocal seen, done
            if done:  # the body is in; later reads wait for a disconnect, as long as a response streams
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), api.body_timeout_s)
            except TimeoutError:
                raise HTTPException(408, f"no body bytes for {api.body_timeout_s:g}s", headers=_CLOSE) from None
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
            done = not message.get("more_body", False)
            return message

        await self.app(scope, bounded if has_body else receive, send)
