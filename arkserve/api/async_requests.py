"""Asynchronous requests in the API (docs/async.md): a request's status and result by id (for the CLI's
``arkserve async get``; the gateway serves the same at ``<endpoint>/async/<id>``), and the webhook secrets that
sign callbacks: the caller's, and one per service for a public service's anonymous requests. Another user's
request reads as missing; an admin sees every one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from arkserve.api.security import Caller, Context
from arkserve.api.services import visible_service
from arkserve.asyncq import files
from arkserve.domain.async_requests import public_view, service_webhook_secret, webhook_secret
from arkserve.errors import Conflict, NotFound
from arkserve.store import async_requests as queue_store

router = APIRouter(tags=["asynchronous requests"])


def _own(ctx: Context, caller: Any, request_id: str, bodies: bool) -> dict[str, Any]:
    with ctx.store.read() as conn:
        row = queue_store.get(conn, request_id, with_bodies=bodies)
    if row is None or not (caller.user.is_admin or (row["user_id"] is not None and caller.owns(row["user_id"]))):
        raise NotFound(f'asynchronous request "{request_id}" not found (results are kept for '
                       f"{ctx.settings.asyncq.retention_s:g} s)", code="AsyncRequestNotFound")
    return row


@router.get("/async-requests/{request_id}", summary="Status of an asynchronous request (and its result's head)")
def get_async_request(request_id: str, caller: Caller, ctx: Context) -> dict[str, Any]:
    return public_view(_own(ctx, caller, request_id, False))


# The app's answer keeps its type for programs, but is never run by a browser on the console's origin (an app
# answering text/html with a script would otherwise act as whoever opened the link: an admin reads every result).
INERT = {"Content-Security-Policy": "sandbox; default-src 'none'"}  # and nosniff, as every /api/ answer


@router.get("/async-requests/{request_id}/result", summary="The stored response body of a finished request",
            response_class=Response)
def get_async_result(request_id: str, caller: Caller, ctx: Context) -> Response:
    row = _own(ctx, caller, request_id, True)
    if row["status"] != queue_store.SUCCEEDED:
        raise Conflict(f"the request is {row['status']}" + (f": {row['error']}" if row.get("error") else ""),
                       code="ResultNotReady" if row["status"] in ("queued", "running") else "AsyncRequestFailed")
    body = row["result_body"] or b""
    if row["result_file"]:
        body = files.read(files.body_dir(ctx.settings.data_dir), row["result_file"])
    stored = {k.lower(): v for k, v in row["result_headers"] or []}
    extra = {"Content-Encoding": stored["content-encoding"]} if "content-encoding" in stored else {}
    return Response(body, media_type=stored.get("content-type", "application/octet-stream"),
                    headers={"X-Ark-Result-Status": str(row["result_status"]), **extra, **INERT})


@router.get("/webhook-secret", summary="Your webhook secret: callbacks of your asynchronous requests are signed "
                                       "with it; with ?service=NAME, the secret of one public service of yours, "
                                       "which signs callbacks of its anonymous requests (docs/signing.md)")
def get_webhook_secret(caller: Caller, ctx: Context, service: str | None = None) -> dict[str, str]:
    doc = {"algorithm": "HMAC-SHA256", "signature_header": "X-Ark-Webhook-Signature"}
    if service is None:
        return {"secret": webhook_secret(ctx.master.key, caller.user.id), **doc}
    svc = visible_service(ctx, caller, service)  # 404 for another user's service
    return {"secret": service_webhook_secret(ctx.master.key, svc.name, svc.created_at), "service": svc.name, **doc}
