"""The WebDAV server itself: wsgidav (through a2wsgi) over each user's network disk, with our users as its
domain controller. Imported by :class:`arkserve.api.dav.LazyDav` on the first request to ``/dav/``."""

from __future__ import annotations

from typing import Any

from a2wsgi import WSGIMiddleware
from wsgidav.dav_error import DAVError
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from arkserve.api.context import AppContext
from arkserve.api.dav import MOUNT, Credentials
from arkserve.api.disk import user_uploads
from arkserve.errors import TooManyRequests
from arkserve.storage.uploads import Uploads
from arkserve.storage.webdav import USER_KEY, DiskProvider
from arkserve.store import users as user_store


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
        try:
            username = self.credentials(user_name, password, environ.get("REMOTE_ADDR", ""))
        except TooManyRequests as exc:  # the login throttle: 429 + Retry-After, as on every password check
            raise DAVError(exc.status, context_info=exc.message,
                           add_headers=[("Retry-After", str(exc.details["retry_after_s"]))]) from None
        if username is None:
            return False
        environ[USER_KEY] = username
        return True

    def digest_auth_user(self, realm: str, user_name: str, environ: dict[str, Any]) -> bool:
        return False


def build(ctx: AppContext, credentials: Credentials) -> Any:
    """The wsgidav app over every user's disk, as an ASGI app (mounted at ``/dav`` by :mod:`arkserve.api.dav`)."""

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
        "arkserve": {"credentials": credentials},
        "middleware_stack": [ErrorPrinter, HTTPAuthenticator, RequestResolver],  # no HTML browser, no CORS
        "lock_storage": True,
        "property_manager": True,
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
    }
    return WSGIMiddleware(WsgiDAVApp(config), workers=8)
