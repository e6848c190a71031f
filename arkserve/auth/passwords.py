"""Password hashing (Argon2id) and the rules a password must meet. Clear text is never stored or logged."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from arkserve.errors import ValidationFailed

_hasher = PasswordHasher()
MIN_LENGTH = 8


def check_policy(password: str, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(f"{field} must be at least {MIN_LENGTH} characters", field=field)
    if len(password) > 256:
        raise ValidationFailed(f"{field} must be at most 256 characters", field=field)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Spent on unknown users so a login for a missing account costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


def generate_password() -> str:
    return secrets.token_urlsafe(15)
