"""WebDAV at ``/dav/``: wsgidav (through a2wsgi) over each user's own network disk, Basic auth.

A client logs in with its console user name and password, or with an access key as the user name and
its secret key as the password (what ``rclone``, ``davfs2`` and desktop file managers can send). The
platform's TLS protects the password on the wire. A password is checked like every other one, through the
login throttle (:func:`arkserve.api.logins.check_password`: 429 with ``Retry-After`` while throttled, each
failure a security event). Successful checks are remembered for :data:`CACHE_S` seconds (keyed by a hash,
never the secret itself), and the same credentials arriving at once are checked once, so a client's many
requests do not each pay an Argon2 verification. A remembered check holds only while nothing changed: each
request reads the user back (same id, not disabled, same password hash) and the keys' version (moved by
every key and user change), so a disabled, deleted and re-created user, a new password or a removed key is
refused at once.

Paths with a ``.`` or ``..`` component are refused here (400 ``BadPath``, as everywhere on the disk) before
wsgidav sees them: it would fold them away itself, and loses the body of the 400 it answers for one that
climbs above the root.

Every request but a PUT may carry at most :data:`MAX_BODY` bytes (413 ``PayloadTooLarge`` by its
``Content-Length``, before anything is read): wsgidav reads such a body (PROPFIND, PROPPATCH, LOCK) whole into
memory, and keeps what PROPPATCH and LOCK send. (It ignores a body without ``Content-Length`` there.) A client
gone before its body's end is an error while the body is read (a2wsgi would hand wsgidav a plain end of
body): a cut-off PUT is aborted, never installed under its name.

wsgidav itself (:mod:`arkserve.api.dav_app`) is imported on the first request to ``/dav/``: a platform
whose users never mount their disk does not carry it (a few MB in every API process).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from arkserve.api.context import AppContext
from arkserve.api.errors import error_response
from arkserve.api.logins import check_password
from arkserve.auth import passwords
from arkserve.auth.vault import VaultError, unseal
from arkserve.errors import Unauthenticated
from arkserve.storage import paths
from arkserve.store import keys as key_store
from arkserve.store import users as user_store
from arkserve.store.db import version

MOUNT = "/dav"
CACHE_S = 30.0
MAX_BODY = 64 << 10  # bytes of a request body other than a PUT's


@dataclass(frozen=True)
class _Grant:
    """A successful check, and what it relied on."""

    user_id: int
    username: str
    password_hash: str
    keys_version: int
    until: float


class Credentials:
    """Checks a Basic-auth pair: (user name, password) or (AK, SK); returns the user name or ``None``."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._ok: dict[bytes, _Grant] = {}
        self._gates: dict[bytes, threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, secret: str, client: str = "") -> str | None:
        """The user, or ``None``; 429 ``LoginThrottled``/``LoginBusy`` (:class:`TooManyRequests`) while throttled.
        ``client`` is the client's address, for the throttle and the security events."""
        key = hashlib.sha256(f"{name}\0{secret}".encode()).digest()
        with self._lock:
            gate = self._gates.setdefault(key, threading.Lock())
        try:
            with gate:  # a client's parallel requests wait for the first one's check instead of each hashing
                grant = self._remembered(key) or self._check(name, secret, client)
                if grant is None:
                    return None
                with self._lock:  # (again, when remembered: it holds a while longer only by its own until)
                    if len(self._ok) > 10_000:
                        self._ok.clear()
                    self._ok[key] = grant
                return grant.username
        finally:
            with self._lock:
                self._gates.pop(key, None)

    def _remembered(self, key: bytes) -> _Grant | None:
        """The remembered check, if it still holds (its caller holds the key's gate)."""
        with self._lock:
            hit = self._ok.get(key)
        if hit is None or hit.until <= time.monotonic():
            return None
        with self.ctx.store.read() as conn:
            user = user_store.find(conn, hit.username)
            keys_version = version(conn, "keys")
        if (user is None or user.id != hit.user_id or user.disabled or user.password_hash != hit.password_hash
                or keys_version != hit.keys_version):
            with self._lock:
                self._ok.pop(key, None)
            return None
        return hit

    def _check(self, name: str, secret: str, client: str) -> _Grant | None:
        with self.ctx.store.read() as conn:
            keys_version = version(conn, "keys")  # read first: a change during the check is seen next time
            stored = key_store.find(conn, name)
            if stored is not None:
                owner = user_store.get_by_id(conn, stored.user_id)
                if not stored.enabled or owner.disabled:
                    return None
                try:
                    sk = unseal(self.ctx.master, stored.sealed, name).decode()
                except VaultError:
                    return None
                if not hmac.compare_digest(sk.encode(), secret.encode()):
                    return None
                return _Grant(owner.id, owner.username, owner.password_hash, keys_version,
                              time.monotonic() + CACHE_S)
            user = user_store.find(conn, name)

        def check() -> bool:
            if user is None:
                passwords.burn_time(secret)
                return False
            return passwords.verify_password(user.password_hash, secret) and not user.disabled

        ok = check_password(self.ctx, client, name, check, "webdav login")
        if not ok or user is None:
            return None
        return _Grant(user.id, user.username, user.password_hash, keys_version, time.monotonic() + CACHE_S)


def refuse_dot_segments(path: str) -> None:
    """400 ``BadPath`` for a ``.`` or ``..`` component (``path`` as the server decoded it)."""
    for name in path.split("/"):
        if name in (".", ".."):
            raise paths.BadPath(f"path {path!r} contains a {name!r} component")


def refuse_bad_basic(scope: Scope) -> None:
    """401 ``BadAuthorization`` for a Basic header that is not base64 of UTF-8 ``name:password``: wsgidav would
    fail on it with a 500 (and its HTML page)."""
    for name, value in scope.get("headers", []):
        if name != b"authorization":
            continue
        scheme, _, rest = value.strip().partition(b" ")
        if scheme.lower() == b"basic":
            try:
                text = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
            except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
                text = ""
            if ":" not in text:
                raise Unauthenticated("the Authorization header is not Basic base64(name:password)",
                                      code="BadAuthorization")


class LazyDav:
    """The ASGI app at ``/dav``: builds the wsgidav app on its first request."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refuse_dot_segments(scope["path"])
            refuse_bad_basic(scope)
            if scope["method"] != "PUT" and _content_length(scope) > MAX_BODY:
                message = f"a WebDAV {scope['method']} body may have at most {MAX_BODY} bytes"
                await error_response(Request(scope), 413, "PayloadTooLarge", message,
                                     headers={"Connection": "close"})(scope, receive, send)
                return
            receive = _cut_is_an_error(receive)
        if self.app is None:
            from arkserve.api import dav_app

            self.app = dav_app.build(self.ctx, Credentials(self.ctx))
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _cut_is_an_error(receive: Receive) -> Receive:
    """``receive`` that raises :class:`ClientDisconnect` for a disconnect before the body's end, which a2wsgi
    would otherwise read as the end of the body (and wsgidav install a cut-off PUT)."""
    ended = False

    async def checked() -> Message:
        nonlocal ended
        message = await receive()
        if message["type"] == "http.disconnect" and not ended:
            raise ClientDisconnect()
        if message["type"] == "http.request" and not message.get("more_body", False):
            ended = True
        return message

    return checked


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Serve WebDAV at ``/dav/`` on ``app``."""
    app.mount(MOUNT, LazyDav(ctx), name="webdav")
