"""What every body of ``/api/v1`` shares: ``_In``, the base of request bodies (unknown fields are a 422),
:class:`ErrorBody`, the shape of every error answer, and the integer bounds of the store's columns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# The largest integers the store's columns hold: BigInteger (and any integer on SQLite), and Integer on
# PostgreSQL. An input bounded by these is a 422 when too large, never an overflow in the database driver (500).
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None
