"""WebDAV at ``/dav/``: wsgidav (through a2wsgi) over each user's own network disk, Basic auth.

A client logs in with its console user name and password, or with an access key as the user name and
its secret key as the password (what ``rclone``, ``davfs2`` and desktop file managers can send). The
platform's TLS protects the password on the wire. Successful checks are remembered for
:data:`CACHE_S` seconds (keyed by a hash, never the secret itself), so a client's many requests do not
each pay an Argon2 verification; a disabled user or key stops working when that memory lapses.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from arkserve.api.context import AppContext
from arkserve.api.disk import user_uploads
from arkserve.auth import passwords
from arkserve.auth.vault import VaultError, unseal
from arkserve.storage.uploads import Uploads
from arkserve.storage.webdav import USER_KEY, DiskProvider
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


class ArkDomainController(BaseDomainController):  # type: ignore[misc]
    """wsgidav's view of our users: one realm, Basic auth only, checked by :class:`Credentials`."""

    def __init__(self, wsgidav_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, config)
        self.credentials: Credentials = config["arkserve"]["credentials"]

    def __str__(self) -> str:
        return "ArkDomainController"

    def get_domain_realm(self, path_info: str, environ: dict[str, Any]) -> str:
        return "arkserve disk"

    def require_authentication(self, realm: str, environ: dict[str, Any]) -> bool:
        return True

    def supports_http_digest_auth(self) -> bool:
        return False

    def basic_auth_user(self, realm: str, user_name: str, password: str, environ: dict[str, Any]) -> bool:
        username = self.credentials(user_name, password)
        if username is None:
            return False
        environ[USER_KEY] = username
        return True

    def digest_auth_user(self, realm: str, user_name: str, environ: dict[str, Any]) -> bool:
        return False


def mount(app: FastAPI, ctx: AppContext) -> None:
    """Serve WebDAV at ``/dav/`` on ``app``."""

    def uploads_for(username: str) -> Uploads:
        with ctx.store.read() as conn:
            user = user_store.get(conn, username)
        return user_uploads(ctx, user)

    config: dict[str, Any] = {
        "provider_mapping": {"/": DiskProvider(uploads_for)},
        "mount_path": MOUNT,  # hrefs in answers; a2wsgi already strips it from PATH_INFO
        "http_authenticator": {"domain_controller": ArkDomainController, "accept_basic": True,
                               "accept_digest": False, "default_to_digest": False, "trusted_auth_header": None},
        "simple_dc": None,
        "arkserve": {"credentials": Credentials(ctx)},
        "middleware_stack": [ErrorPrinter, HTTPAuthenticator, RequestResolver],  # no HTML browser, no CORS
        "lock_storage": True,
        "property_manager": True,
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
    }
    app.mount(MOUNT, WSGIMiddleware(WsgiDAVApp(config), workers=8), name="webdav")  # type: ignore[arg-type]
