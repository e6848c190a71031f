"""The public Python client of arkserve; request signing lives in :mod:`arkserve.sdk.auth`."""

from typing import TYPE_CHECKING, Any

from arkserve.sdk.auth import ArkAuth, websocket_headers

if TYPE_CHECKING:
    from arkserve.sdk.requests_auth import ArkRequestsAuth

__all__ = ["ArkAuth", "ArkRequestsAuth", "websocket_headers"]


def __getattr__(name: str) -> Any:
    """``ArkRequestsAuth`` is imported on first use (with ``requests``), not by every ``arkserve`` command."""
    if name == "ArkRequestsAuth":
        from arkserve.sdk.requests_auth import ArkRequestsAuth

        return ArkRequestsAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
