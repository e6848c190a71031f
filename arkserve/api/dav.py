"""WebDAV at ``/dav/``: wsgidav (through a2wsgi) over each user's own network disk, Basic auth.

A client logs in with its console user name and password, or with an access key as the user name and
its secret key as the password (what ``rclone``, ``davfs2`` and desktop file managers can send). The
platform's TLS protects the password on the wire. Successful checks are remembered for
:data:`CACHE_S` seconds (keyed by a hash, never the secret itself), so a client's many requests do not
each pay an Argon2 verification; a disabled user or key stops working when that memory lapses.

wsgidav itself (:mod:`arkserve.api.dav_app`) is imported on the first request to ``/dav/``: a platform
whose users never mount their disk does not carry it (a few MB in every API process).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from arkserve.api.context import AppContext
from arkserve.auth import passwords
from arkserve.auth.vault import VaultError, unseal
from arkserve.store import keys as key_store
from arkserve.store import users as user_store

MOUNT = "/dav"
CACHE_S = 30.0


class Credentials:
    """Checks a Basic-auth pair: (user name, password) or (AK, SK); returns the user name or ``None``."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._ok: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, secret: str) -> str | None:
        key = hashlib.sha256(f"{name}\0{secret}".encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._ok.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        user = self._check(name, secret)
        if user is not None:
            with self._lock:
                if len(self._ok) > 10_000:
                    self._ok.clear()
                self._ok[key] = (user, now + CACHE_S)
        return user

    def _check(self, name: str, secret: str) -> str | None:
        with self.ctx.store.read() as conn:
            stored = key_store.find(conn, name)
            if stored is not None:
                owner = user_store.get_by_id(conn, stored.user_id)
                if not stored.enabled or owner.disabled:
                    return None
                try:
                    sk = unseal(self.ctx.master, stored.sealed, name).decode()
                except VaultError:
                    return None
                return owner.username if hmac.compare_digest(sk.encode(), secret.encode()) else None
            user = user_store.find(conn, name)
        if user is None or user.disabled:
            passwords.burn_time(secret)
            return None
        return user.username if passwords.verify_password(user.password_hash, secret) else None


class LazyDav:
    """The ASGI app at ``/dav``: builds the wsgidav app on its first request."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            from arkserve.api import dav_app

            self.app = dav_app.build(self.ctx, Credentials(self.ctx))
        await self.app(scope, receive, send)


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Serve WebDAV at ``/dav/`` on ``app``."""
    app.mount(MOUNT, LazyDav(ctx), name="webdav")
