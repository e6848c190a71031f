"""What every body of ``/api/v1`` shares: ``_In``, the base of request bodies (unknown fields are a 422), and
:class:`ErrorBody`, the shape of every error answer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None
