"""The WebDAV server itself: wsgidav (through a2wsgi) over each user's network disk, with our users as its
domain controller. Imported by :class:`arkserve.api.dav.LazyDav` on the first request to ``/dav/``."""

from __future__ import annotations

import json
from typing import Any

from a2wsgi import WSGIMiddleware
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.error_printer import ErrorPrinter
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from arkserve.api.context import AppContext
from arkserve.api.dav import MOUNT, Credentials
from arkserve.api.disk import user_uploads
from arkserve.errors import TooManyRequests
from arkserve.storage.dav_state import DeadProperties, UserLocks
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
        # the login throttle's TooManyRequests goes up to ThrottleAnswer: 429 + Retry-After + the API's JSON body
        username = self.credentials(user_name, password, environ.get("REMOTE_ADDR", ""))
        if username is None:
            return False
        environ[USER_KEY] = username
        return True

    def digest_auth_user(self, realm: str, user_name: str, environ: dict[str, Any]) -> bool:
        return False


class ThrottleAnswer(BaseMiddleware):  # type: ignore[misc]
    """Answers the login throttle's :class:`TooManyRequests` as the rest of the API does (429, ``Retry-After``,
    JSON ``{code, message, request_id}``) instead of wsgidav's HTML error page. Sits inside ErrorPrinter, which
    would turn any exception into HTML."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return self.next_app(environ, start_response)
        except TooManyRequests as exc:
            rid = str(((environ.get("asgi.scope") or {}).get("state") or {}).get("request_id", ""))
            body = json.dumps({"code": exc.code, "message": exc.message, "request_id": rid,
                               "retry_after_s": exc.details["retry_after_s"]}).encode()
            start_response("429 Too Many Requests", [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(body))),
                                                     ("Retry-After", str(exc.details["retry_after_s"]))])
            return [body]


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
        "middleware_stack": [ErrorPrinter, ThrottleAnswer, HTTPAuthenticator, RequestResolver],  # no browser/CORS
        "lock_storage": UserLocks(),  # in memory, per user and bounded (see arkserve.storage.webdav)
        "property_manager": DeadProperties(),
        "verbose": 1,
        "logging": {"enable": False, "enable_loggers": []},
    }
    return WSGIMiddleware(WsgiDAVApp(config), workers=8)
