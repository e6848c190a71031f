"""Bodies of the people side of the API: console login and session, users, access keys (and revealing a
secret), and the security events (failed logins) an admin reads."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from arkserve.schemas.common import _In

USERNAME_RE = r"^[a-z][a-z0-9_.-]{1,31}$"


class LoginRequest(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    username: str
    role: str
    csrf_token: str
    expires_at: float


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    created_at: float


class WhoAmI(UserOut):
    auth: Literal["signature", "session"]
    access_key: str | None = None


class UserCreate(_In):
    username: str = Field(pattern=USERNAME_RE, description="2-32 chars: a-z, 0-9, _ . -; starts with a letter")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "user"] = "user"

    @field_validator("username")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v.startswith("ark-"):  # the registry's ark-public/ namespace, the ark-pull-token pull credential
            raise ValueError("user names starting with 'ark-' are reserved for the platform")
        return v


class UserPatch(_In):
    disabled: bool | None = None
    role: Literal["admin", "user"] | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256,
                                 description="admin only: set a new password for the user")


class PasswordChange(_In):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class KeyCreate(_In):
    description: str = Field(default="", max_length=200)
    username: str | None = Field(default=None, description="admin only: issue the key to another user")


class KeyOut(BaseModel):
    access_key: str
    secret_key_masked: str
    username: str
    enabled: bool
    description: str
    created_at: float
    last_used_at: float | None


class KeyCreated(KeyOut):
    secret_key: str


class KeyPatch(_In):
    enabled: bool


class RevealRequest(_In):
    password: str = Field(min_length=1, max_length=256)


class RevealOut(BaseModel):
    access_key: str
    secret_key: str


class SecurityEventOut(BaseModel):
    time: float
    kind: str = Field(description="login_failed: a wrong user name or password (console login, key reveal, "
                                  "password change)")
    username: str
    client: str = Field(description="the client's address as the API saw it")
    message: str
