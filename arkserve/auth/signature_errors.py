"""The errors of the ark AK/SK signature: :class:`SignatureError` and one subclass per code of the spec.

This module owns the error table of ``docs/spec/ark-hmac.md``: each failed check of a signed request
raises one of these, and its ``code`` and ``status`` are what the client sees. They are re-exported
by :mod:`arkserve.auth.signing`, which is where callers import them from.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDenied",
    "ContentHashMismatch",
    "InvalidCredential",
    "InvalidDate",
    "MalformedAuthorization",
    "MissingAuthorization",
    "MissingSignedHeader",
    "RequestExpired",
    "SignatureError",
    "SignatureMismatch",
]


class SignatureError(Exception):
    """A request failed authentication; ``code`` and ``status`` come from the spec's error table.

    ``message`` is safe to send to the client: it never contains the expected signature and never
    says whether an access key exists.
    """

    code: ClassVar[str] = "SignatureError"
    status: ClassVar[int] = 401

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MissingAuthorization(SignatureError):
    code = "MissingAuthorization"


class MalformedAuthorization(SignatureError):
    code = "MalformedAuthorization"


class InvalidDate(SignatureError):
    code = "InvalidDate"


class RequestExpired(SignatureError):
    code = "RequestExpired"


class MissingSignedHeader(SignatureError):
    code = "MissingSignedHeader"


class InvalidCredential(SignatureError):
    code = "InvalidCredential"


class SignatureMismatch(SignatureError):
    code = "SignatureMismatch"


class ContentHashMismatch(SignatureError):
    code = "ContentHashMismatch"


class AccessDenied(SignatureError):
    code = "AccessDenied"
    status = 403
