"""One table from errors to HTTP: every 4xx/5xx is JSON ``{code, message, request_id}``."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arkserve.auth.signing import SignatureError
from arkserve.errors import ArkserveError, ValidationFailed

log = logging.getLogger("arkserve.api")

_HTTP_CODES = {400: "BadRequest", 401: "Unauthenticated", 403: "AccessDenied", 404: "NotFound",
               405: "MethodNotAllowed", 408: "RequestTimeout", 409: "Conflict", 413: "PayloadTooLarge",
               415: "UnsupportedMediaType",
               422: "ValidationFailed", 429: "TooManyRequests"}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def error_response(request: Request, status: int, code: str, message: str, *,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"code": code, "message": message, "request_id": request_id(request), **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


def _first_error(errors: Sequence[Any]) -> tuple[str, str]:
    """(field, message) of pydantic's first error, the way every 422 of the API names it."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # loc is ("body", <character offset>)
        at = first.get("loc", ("body", 0))[-1]
        return "body", f"invalid JSON at character {at}"
    field = _field_of(tuple(first.get("loc", ())))
    return field, f"{field}: {first.get('msg', 'invalid value')}"


M = TypeVar("M", bound=pydantic.BaseModel)


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` built from ``data``, or a 422 ``ValidationFailed`` naming the field, as for a request body."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        field, message = _first_error(exc.errors())
        raise ValidationFailed(message, field=field) from None


def install(app: FastAPI) -> None:
    @app.exception_handler(ArkserveError)
    async def _ark(request: Request, exc: ArkserveError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("request %s failed: %s", request_id(request), exc.code)
        retry = exc.details.get("retry_after_s")
        return error_response(request, exc.status, exc.code, exc.message, **exc.details,
                              headers={"Retry-After": str(retry)} if retry is not None else None)

    @app.exception_handler(SignatureError)
    async def _sig(request: Request, exc: SignatureError) -> JSONResponse:
        # the server stamps the one Date header a client compares its clock with (docs/signing.md)
        headers = {"WWW-Authenticate": "HMAC-SHA256"} if exc.status == 401 else {}
        return error_response(request, exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        field, message = _first_error(exc.errors())
        return error_response(request, 422, "ValidationFailed", message, field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTPError")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        if exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # A value the store refuses (PostgreSQL: a NUL in text, a path or query parameter) that no schema caught:
        # the request's fault, so a 422 rather than a 500 and a traceback. The bodies' own checks name the field.
        why = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        log.warning("request %s: the store refused a value: %s", request_id(request), why)
        return error_response(request, 422, "ValidationFailed", f"a value cannot be stored: {why}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in request %s", request_id(request))
        return error_response(request, 500, "InternalError", "internal error; quote the request_id when reporting")


_SANE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class RequestIdMiddleware:
    """Keeps a sane client ``X-Request-ID`` (else makes one), exposes it on ``request.state`` and echoes it; every
    ``/api/`` answer also says ``X-Content-Type-Options: nosniff``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                if 0 < len(text) <= 128 and set(text) <= _SANE_ID:
                    rid = text
        rid = rid or secrets.token_hex(12)
        scope.setdefault("state", {})["request_id"] = rid
        added = [(b"x-request-id", rid.encode())]
        if scope.get("path", "").startswith("/api/"):  # a body's type is what it says (the console's origin)
            added.append((b"x-content-type-options", b"nosniff"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(added)
            await send(message)

        await self.app(scope, receive, send_with_id)
