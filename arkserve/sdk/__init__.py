"""The public Python client of arkserve; request signing lives in :mod:`arkserve.sdk.auth`."""

from arkserve.sdk.auth import ArkAuth, ArkRequestsAuth

__all__ = ["ArkAuth", "ArkRequestsAuth"]
