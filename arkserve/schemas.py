"""The REST contract: request and response bodies of ``/api/v1`` (pydantic v2 models).

JSON field names here are stable; the CLI's ``-o json`` prints these shapes.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

USERNAME_RE = r"^[a-z][a-z0-9_.-]{1,31}$"
DNS_LABEL_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None


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


class InstanceTypeIn(_In):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")
    cpus: float = Field(gt=0, le=1024)
    memory_mb: int = Field(gt=0)
    gpus: int = Field(default=0, ge=0, le=64)
    gpu_model: str = Field(default="", max_length=64)
    price_per_hour: float = Field(default=0.0, ge=0)
    billing: Literal["payg", "reserved"] = "payg"
    description: str = Field(default="", max_length=200)


class InstanceTypeOut(InstanceTypeIn):
    model_config = ConfigDict(extra="ignore")


class ServiceName(BaseModel):
    name: str

    @field_validator("name")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not DNS_LABEL_RE.match(v):
            raise ValueError("must be a DNS label: 1-63 chars of a-z, 0-9 and '-', starting with a letter")
        return v
