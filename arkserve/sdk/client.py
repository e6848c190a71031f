"""A small client for the REST API, signing every call with the AK/SK of a profile.

Build a path from names with :func:`segment` (one name) or :func:`segments` (a ``folder/file`` path):
``client.delete(f"/services/{segment(name)}")``. Unquoted, ``../keys/AK…`` as a service name would be
resolved by httpx into ``/keys/AK…``, another endpoint; the client refuses a path with such a segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from arkserve.sdk.auth import ArkAuth


class ApiError(Exception):
    """An error answer of the API: ``status``, ``code``, ``message``, ``request_id``."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.request_id = status, code, message, request_id


def api_error(resp: httpx.Response) -> ApiError:
    """The ApiError of an error answer (a read one). A body that is not the API's JSON object (a proxy's HTML
    page, ``null``, a list) gives ``HTTP<status>`` and the start of the text; the request id then comes from the
    ``X-Request-Id`` header, which the API sends on every answer."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(resp.status_code, str(body.get("code", f"HTTP{resp.status_code}")),
                    str(body.get("message", resp.text[:200])),
                    str(body.get("request_id", resp.headers.get("x-request-id", ""))))


def _check(resp: httpx.Response) -> None:
    """Raise the ApiError of an error answer (4xx, 5xx) or of a redirect (3xx; ``resp`` read unless streamed).

    No API route answers 3xx: one comes for a wrong path (``/services/`` with its trailing slash gets 307) or from
    something in front of the API. It is never followed: the repeated request would not be signed for its new
    path (401), and following it would send the signature headers to whatever host the ``Location`` names."""
    if 300 <= resp.status_code < 400:
        where = resp.headers.get("location")
        raise ApiError(resp.status_code, "Redirected",
                       f"the server answered {resp.status_code} for {resp.request.method} {resp.request.url.path}"
                       + (f", moved to {where}" if where else "") + "; the SDK does not follow redirects (check "
                       "the path, without a trailing slash, and the endpoint)", resp.headers.get("x-request-id", ""))
    if resp.status_code >= 400:
        raise api_error(resp)


_DOTS = (".", "..")


def segment(value: str, what: str = "name") -> str:
    """``value`` as ONE segment of a URL path, percent-quoted (``?``, ``#`` and ``%`` included).

    Raises ValueError for an empty, ``.`` or ``..`` one: quoting leaves those as they are, and an HTTP client
    resolves them against the path before it (``/services/..`` is ``/``), so no name may be one. And for one with
    a ``/``: no name of the API (user, access key, service, model, version, instance type, request id) may contain
    one, and the API's server decodes ``%2F`` before routing, so ``m/versions/2`` as a model name would name
    version 2 of ``m``."""
    if not value or value in _DOTS:
        raise ValueError(f"invalid {what} {value!r}")
    if "/" in value:
        raise ValueError(f"invalid {what} {value!r}: it cannot contain '/' (the API would read it as several names)")
    return quote(value, safe="")


def segments(path: str, what: str = "path") -> str:
    """A path of several segments (``datasets/flowers``, ``namespace/repository``) for a URL: each one quoted
    as by :func:`segment`, the ``/`` between them kept and empty ones (``a//b``, a leading ``/``) dropped.

    Raises ValueError when nothing is left or a segment is ``.`` or ``..``."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in _DOTS for p in parts):
        raise ValueError(f"invalid {what} {path!r}" + ("" if parts else ": empty"))
    return "/".join(quote(p, safe="") for p in parts)


def _checked(path: str) -> str:
    """``path`` unless a segment of it is ``.`` or ``..``, which httpx would quietly resolve into another
    endpoint's path; such a path comes from a name put in unquoted (see :func:`segment`)."""
    if any(p in _DOTS for p in path.split("?", 1)[0].split("/")):
        raise ValueError(f"path {path!r} has a '.' or '..' segment: quote names put in a path with segment()")
    return path


@dataclass(frozen=True)
class Page:
    """A page of a list: its rows, the rows the filters match over all pages (``X-Total-Count``) and the
    cursor of the next page (``X-Next-Cursor``; None on the last page)."""

    items: list[Any]
    total: int | None
    next_cursor: str | None


class Client:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        timeout: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._http = httpx.Client(
            base_url=f"{self.endpoint}/api/v1",
            auth=ArkAuth(access_key, secret_key),
            timeout=timeout,
            verify=verify,
        )

    def _send(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
              ) -> httpx.Response:
        try:
            resp = self._http.request(method, _checked(path), json=json, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(0, "ConnectionFailed", f"cannot reach {self.endpoint}: {exc}") from None
        _check(resp)
        return resp

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = self._send(method, path, json=json, params=params)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def page(self, path: str, **params: Any) -> Page:
        """One page of a paged list (``limit``, ``cursor`` and the list's filters as ``params``)."""
        resp = self._send("GET", path, params={k: v for k, v in params.items() if v is not None} or None)
        total = resp.headers.get("X-Total-Count")
        return Page(resp.json(), int(total) if total is not None else None, resp.headers.get("X-Next-Cursor"))

    def pages(self, path: str, **params: Any) -> Iterator[Page]:
        """Every page of a paged list in turn, following ``X-Next-Cursor`` until the last page."""
        while True:
            page = self.page(path, **params)
            yield page
            if page.next_cursor is None:
                return
            params = {**params, "cursor": page.next_cursor}

    def list_all(self, path: str, **params: Any) -> list[Any]:
        """Every row of a paged list (all pages, ``limit`` rows a request)."""
        return [row for page in self.pages(path, **params) for row in page.items]

    def upload(self, method: str, path: str, content: Iterable[bytes], *, params: dict[str, Any] | None = None,
               content_type: str = "application/octet-stream") -> Any:
        """Send a streamed body (sent as an unsigned payload, see ``ArkAuth``), with no read timeout."""
        try:
            resp = self._http.request(method, _checked(path), content=content, params=params,
                                      headers={"content-type": content_type},
                                      timeout=httpx.Timeout(30.0, read=None, write=None))
        except httpx.HTTPError as exc:
            raise ApiError(0, "ConnectionFailed", f"cannot reach {self.endpoint}: {exc}") from None
        _check(resp)
        return resp.json() if resp.content else None

    def stream_text(self, path: str, **params: Any) -> Iterator[str]:
        """GET a streaming text response (e.g. followed logs), chunk by chunk, with no read timeout."""
        query = {k: v for k, v in params.items() if v is not None}
        path = _checked(path)
        try:
            with self._http.stream("GET", path, params=query, timeout=httpx.Timeout(10.0, read=None)) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    _check(resp)
                yield from resp.iter_text()
        except httpx.HTTPError as exc:
            raise ApiError(0, "ConnectionFailed", f"cannot reach {self.endpoint}: {exc}") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
