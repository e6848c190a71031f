"""Request signing for HTTP clients: :class:`ArkAuth` for httpx and :class:`ArkRequestsAuth` for requests.

Both add the ``date``, ``x-ark-content-sha256`` and ``Authorization`` headers of the ark AK/SK
scheme (see ``docs/signing.md``), computed by :mod:`arkserve.auth.signing` over exactly what the
client will put on the wire: the method, the raw path and query, the ``Host`` header (with a
non-default port) and the body bytes. A body that cannot be hashed up front (a generator, a file,
an httpx multipart stream) is sent as an *unsigned payload*: the empty string's hash is signed,
as the reference client does for multipart uploads. :func:`websocket_headers` signs a WebSocket
handshake (a GET without a body) for clients that take extra headers, such as ``websockets``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from arkserve.auth import signing

if TYPE_CHECKING:
    from arkserve.sdk.requests_auth import ArkRequestsAuth as ArkRequestsAuth

__all__ = ["ArkAuth", "ArkRequestsAuth", "websocket_headers"]

Clock = Callable[[], float]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _checked_secret(secret_key: str) -> str:
    if not isinstance(secret_key, str):
        raise TypeError("secret_key must be a str (the base64 secret key as issued)")
    try:
        signing.decode_secret(secret_key)
    except ValueError:
        raise ValueError(
            "secret_key is not a valid secret key: expected the standard base64 text (with '=' padding) "
            "shown when the access key was created"
        ) from None
    return secret_key


def _checked_access_key(access_key: str) -> str:
    if not isinstance(access_key, str) or not access_key or not access_key.isascii():
        raise ValueError("access_key must be a non-empty ASCII string")
    if not access_key.isprintable() or any(c in access_key for c in " &="):
        raise ValueError("access_key must not contain spaces, '&' or '='")
    return access_key


class ArkAuth(httpx.Auth):
    """Sign httpx requests (sync and async clients alike) with an access key and secret key.

    >>> client = httpx.Client(base_url="http://127.0.0.1:8000", auth=ArkAuth(ak, sk))
    """

    requires_request_body = False  # never force a stream into memory: unread bodies go unsigned

    def __init__(self, access_key: str, secret_key: str, *, clock: Clock = time.time) -> None:
        self.access_key = _checked_access_key(access_key)
        self._secret_key = _checked_secret(secret_key)
        self._clock = clock

    def __repr__(self) -> str:
        return f"ArkAuth(access_key={self.access_key!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            body: bytes | None = request.content  # set for content=, json=, data= (no files)
        except httpx.RequestNotRead:
            body = None  # streaming or multipart: unsigned payload
        request.headers.update(
            signing.sign_headers(
                method=request.method,
                url=request.url.raw_path.decode("ascii"),
                host=request.headers["Host"],
                access_key=self.access_key,
                secret_key=self._secret_key,
                body=body,
                now=self._clock(),
            )
        )
        yield request


def websocket_headers(uri: str, access_key: str, secret_key: str, *, clock: Clock = time.time) -> dict[str, str]:
    """The signing headers of a WebSocket handshake to ``uri`` (``ws://`` or ``wss://``).

    Signs ``GET``, the path and query of ``uri`` and the ``Host`` the ``websockets`` client sends for
    it (the port only when it is not the scheme's default, IPv6 in brackets):

    >>> with websockets.sync.client.connect(uri, additional_headers=websocket_headers(uri, ak, sk)) as ws:
    ...     ws.send("hello")

    The signature is valid for the skew window (15 minutes), so sign right before connecting.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a WebSocket URI: {uri!r} (expected ws://host[:port]/path or wss://...)")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or _DEFAULT_PORTS[scheme]
    if port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return signing.sign_headers(method="GET", url=path, host=host, access_key=_checked_access_key(access_key),
                                secret_key=_checked_secret(secret_key), body=None, now=clock())


def __getattr__(name: str) -> Any:
    """``ArkRequestsAuth`` lives in :mod:`arkserve.sdk.requests_auth`, imported on first use: ``requests`` costs
    every ``arkserve`` command's start (~70 ms) and only that class needs it."""
    if name == "ArkRequestsAuth":
        from arkserve.sdk.requests_auth import ArkRequestsAuth

        return ArkRequestsAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
