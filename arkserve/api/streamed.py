"""Who calls a route whose body streams (disk uploads, model archives): the signature's headers are checked
before the body is read, and the body's claimed hash as it streams through (:class:`BodyHash`), so a body
of any size is never held in memory to be verified. An unsigned payload (the empty hash) is accepted as on
every other route (docs/spec/ark-hmac.md)."""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from arkserve.api import security
from arkserve.api.security import Context, Principal
from arkserve.auth import signing


@dataclass(frozen=True)
class Uploader:
    principal: Principal
    claimed_hash: str | None  # x-ark-content-sha256 of a signed request; None for a console session


async def uploader(request: Request, ctx: Context) -> Uploader:
    """Like :func:`arkserve.api.security.principal`, but leaves the body unread (it is checked as it streams)."""
    header = request.headers.get("authorization")
    if header is not None:
        parsed = signing.parse_authorization(header)
        found = await run_in_threadpool(security._key_secret, ctx, parsed.access_key)
        verified = signing.verify(
            method=request.method, url=security._raw_url(request), headers=dict(request.headers),
            lookup=lambda ak: found[0] if found is not None and ak == parsed.access_key else None,
            now=time.time(), skew_s=ctx.settings.api.clock_skew_s)
        assert found is not None  # verify() raised InvalidCredential otherwise
        await run_in_threadpool(security._touch, ctx, verified.access_key)
        return Uploader(security.Principal(found[1], "signature", verified.access_key), verified.content_hash)
    token = request.cookies.get(security.SESSION_COOKIE)
    if token:
        p = await run_in_threadpool(security._by_session, ctx, token, request.method,
                                    request.headers.get(security.CSRF_HEADER))
        return Uploader(p, None)
    raise signing.MissingAuthorization(
        "request is not signed: send an AK/SK signature (see docs/signing.md) or log in")


StreamingCaller = Annotated[Uploader, Depends(uploader)]


class BodyHash:
    """The body's hash, computed only when the request claims one."""

    def __init__(self, claimed: str | None) -> None:
        self.claimed = claimed
        self.h = hashlib.sha256() if claimed not in (None, signing.EMPTY_CONTENT_HASH) else None
        self.n = 0

    def update(self, data: bytes) -> None:
        self.n += len(data)
        if self.h is not None:
            self.h.update(data)

    def check(self) -> None:
        if self.claimed is None:
            return
        if self.h is not None:
            actual = base64.b64encode(self.h.digest()).decode("ascii")
        else:
            actual = signing.EMPTY_CONTENT_HASH if self.n == 0 else "-"
        signing.check_payload(self.claimed, actual, self.n)


