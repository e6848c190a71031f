"""What every body of ``/api/v1`` shares: ``_In``, the base of request bodies (unknown fields are a 422, and so is
a NUL character in any of its texts), :class:`ErrorBody`, the shape of every error answer, and the integer
bounds of the store's columns."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

# The largest integers the store's columns hold: BigInteger (and any integer on SQLite), and Integer on
# PostgreSQL. An input bounded by these is a 422 when too large, never an overflow in the database driver (500).
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1


def _no_nul_within(value: Any, within: str = "") -> None:
    """A ``ValueError`` when a text in ``value`` holds a NUL character: PostgreSQL's text cannot store one (SQLite
    would: the same body must not be stored on one store and a 500 on the other), and no process takes one."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{within or 'text'} contains a NUL character")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nul_within(k, "a key")
            _no_nul_within(v, f"value of {k}")
    elif isinstance(value, list | tuple | set | frozenset):
        for i, v in enumerate(value):
            _no_nul_within(v, f"item {i}")
    # a nested body (a mount, the autoscaler) is an _In of its own and checked as it is built


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # fields whose NUL the API refuses itself, with its own code (a mount path: 400 InvalidMount)
    nul_checked_elsewhere: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _no_nul_text(cls, v: Any, info: ValidationInfo) -> Any:
        """No NUL in any text of a request body, nor in its lists and maps (a 422 naming the field)."""
        if info.field_name not in cls.nul_checked_elsewhere:
            _no_nul_within(v)
        return v


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str
    field: str | None = None
