"""Opaque list cursors and the paging headers of list answers.

A cursor names the key to continue after (keyset paging) and the filters it was made under, with a
check so that an edited, truncated or foreign cursor is refused (400 ``InvalidCursor``) instead of
silently paging somewhere else. It carries no authority: the caller's scope is applied on every page.

A paged list keeps its JSON array body (clients written before paging keep working) and says the rest
in headers: ``X-Total-Count`` (rows the filters match), ``X-Next-Cursor`` (absent on the last page)
and an RFC 8288 ``Link: <…>; rel="next"``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import Request, Response

from arkserve.errors import PermanentError

_VERSION = 1
_CHECK = 8  # bytes of SHA-256 over the payload: integrity, not secrecy (a cursor grants nothing)

HEADERS = {
    "X-Total-Count": {"description": "How many rows match the filters, over all pages.",
                      "schema": {"type": "integer"}},
    "X-Next-Cursor": {"description": "Pass as `cursor` for the next page; absent on the last page.",
                      "schema": {"type": "string"}},
    "Link": {"description": 'RFC 8288 `<url>; rel="next"` to the next page; absent on the last page.',
             "schema": {"type": "string"}},
}


class InvalidCursor(PermanentError):
    status = 400
    code = "InvalidCursor"


def _filters_key(filters: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(filters.items())).encode()).hexdigest()[:16]


def encode(after: str, filters: Mapping[str, str]) -> str:
    payload = json.dumps({"v": _VERSION, "a": after, "f": _filters_key(filters)}, separators=(",", ":")).encode()
    raw = payload + hashlib.sha256(payload).digest()[:_CHECK]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, filters: Mapping[str, str]) -> str:
    """The key to continue after; ``InvalidCursor`` when the cursor was altered or made for other filters."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload, check = raw[:-_CHECK], raw[-_CHECK:]
        if len(raw) <= _CHECK or hashlib.sha256(payload).digest()[:_CHECK] != check:
            raise ValueError("check")
        body = json.loads(payload)
        after = body["a"]
        if body.get("v") != _VERSION or not isinstance(after, str):
            raise ValueError("version")
    except (ValueError, KeyError, TypeError):
        raise InvalidCursor("cursor: not a cursor this API issued (pass the X-Next-Cursor of the previous page "
                            "unchanged, or leave cursor out to start from the first page)") from None
    if body.get("f") != _filters_key(filters):
        raise InvalidCursor("cursor: it was issued for other filters; keep the filters the same while paging, "
                            "or leave cursor out to start again") from None
    return after


def encode_position(position: tuple[float, int], filters: Mapping[str, str]) -> str:
    """A cursor for a (time, id) keyset (events, newest first)."""
    return encode(f"{position[0]!r}:{position[1]}", filters)


def decode_position(cursor: str, filters: Mapping[str, str]) -> tuple[float, int]:
    t, _, i = decode(cursor, filters).partition(":")
    try:
        return float(t), int(i)
    except ValueError:
        raise InvalidCursor("cursor: not a cursor this API issued (pass the X-Next-Cursor of the previous page "
                            "unchanged)") from None


def set_headers(response: Response, request: Request, total: int, next_cursor: str | None) -> None:
    response.headers["X-Total-Count"] = str(total)
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = next_cursor
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        url = request.url.replace(query=urlencode({**query, "cursor": next_cursor}))
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
