"""The one error tree of arkserve.

Every error the platform raises on purpose derives from :class:`ArkserveError`.
It carries a stable machine ``code`` (CamelCase, part of the REST contract), a
human ``message`` and the HTTP ``status`` the API answers with. Errors are split
into :class:`TemporaryError` (retry later: the store is busy, a runtime is away)
and :class:`PermanentError` (the request itself is wrong). The API translates
them to ``{code, message, request_id}`` in one place (``arkserve.api.errors``).
"""

from __future__ import annotations

from typing import Any


class ArkserveError(Exception):
    """Base of every deliberate arkserve error."""

    status: int = 500
    code: str = "InternalError"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}


class TemporaryError(ArkserveError):
    """The operation may succeed if retried later."""

    status = 503
    code = "Unavailable"


class PermanentError(ArkserveError):
    """The request cannot succeed as made; retrying it unchanged is pointless."""

    status = 400
    code = "BadRequest"


class ValidationFailed(PermanentError):
    """A field of the request is invalid. ``field`` names it (dotted path)."""

    status = 422
    code = "ValidationFailed"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, details={"field": field} if field else None)
        self.field = field


class NotFound(PermanentError):
    status = 404
    code = "NotFound"


class Conflict(PermanentError):
    status = 409
    code = "Conflict"


class LimitExceeded(PermanentError):
    status = 409
    code = "LimitExceeded"


class Unauthenticated(PermanentError):
    status = 401
    code = "Unauthenticated"


class Forbidden(PermanentError):
    status = 403
    code = "AccessDenied"


class TooManyRequests(TemporaryError):
    """Slow down: retry after ``retry_after_s`` seconds (also sent as ``Retry-After``)."""

    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after_s": retry_after_s})


class StoreUnavailable(TemporaryError):
    code = "StoreUnavailable"


class StoreSchemaNewer(PermanentError):
    """The store's schema is at a migration this arkserve does not know (a newer arkserve migrated it: a rollback
    after an upgrade): this build cannot use it. Refused at start, before anything reads or writes."""

    status = 500
    code = "StoreSchemaNewer"


class RuntimeUnavailable(TemporaryError):
    code = "RuntimeUnavailable"


class InsufficientStorage(TemporaryError):
    """The platform's own disk is full (or would drop below the free space it keeps): nothing was stored;
    retry once space is freed."""

    status = 507
    code = "InsufficientStorage"


def listed(items: list[str], shown: int = 5) -> str:
    """The first ``shown`` of ``items`` for an error message, then how many more: ``a, b (and 3 more)``."""
    more = f" (and {len(items) - shown} more)" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
