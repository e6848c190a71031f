"""The public Python client of arkserve; request signing lives in :mod:`arkserve.sdk.auth`."""

from arkserve.sdk.auth import ArkAuth, ArkRequestsAuth, websocket_headers

__all__ = ["ArkAuth", "ArkRequestsAuth", "websocket_headers"]
