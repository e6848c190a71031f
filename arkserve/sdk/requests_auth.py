"""Request signing for ``requests``: :class:`ArkRequestsAuth` (also importable from :mod:`arkserve.sdk.auth`
and :mod:`arkserve.sdk`, which load this module on first use so that ``requests`` is imported only by those
who sign with it). The scheme is :mod:`arkserve.sdk.auth`'s."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from arkserve.auth import signing
from arkserve.sdk.auth import _DEFAULT_PORTS, Clock, _checked_access_key, _checked_secret

__all__ = ["ArkRequestsAuth"]


def _requests_host(request: requests.PreparedRequest) -> str:
    """The ``Host`` header urllib3 / http.client will send for this prepared request."""
    explicit = request.headers.get("Host")
    if explicit is not None:
        return explicit if isinstance(explicit, str) else explicit.decode("latin-1")
    parts = urlsplit(request.url or "")
    host = (parts.hostname or "").rstrip(".")  # urllib3 connects (and names the Host) without the dot
    if ":" in host:
        host = f"[{host.split('%', 1)[0]}]"  # IPv6 literal; http.client drops the zone id
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host


def _requests_body(body: object) -> bytes | None:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        try:
            return body.encode("latin-1")  # what http.client sends for a str body
        except UnicodeEncodeError:
            return None
    return None  # generator, file object, iterable: not hashable up front -> unsigned payload


class ArkRequestsAuth(requests.auth.AuthBase):
    """Sign ``requests`` requests: ``requests.get(url, auth=ArkRequestsAuth(ak, sk))``."""

    def __init__(self, access_key: str, secret_key: str, *, clock: Clock = time.time) -> None:
        self.access_key = _checked_access_key(access_key)
        self._secret_key = _checked_secret(secret_key)
        self._clock = clock

    def __repr__(self) -> str:
        return f"ArkRequestsAuth(access_key={self.access_key!r})"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.update(
            signing.sign_headers(
                method=r.method or "GET",
                url=r.path_url,  # already in the form urllib3 writes (escapes upper-cased)
                host=_requests_host(r),
                access_key=self.access_key,
                secret_key=self._secret_key,
                body=_requests_body(r.body),
                now=self._clock(),
            )
        )
        return r
