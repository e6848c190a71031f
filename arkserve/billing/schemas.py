"""The REST contract of billing: balances, ledger entries, statements, prepaid instances and quotas.

Amounts are currency units with two decimals in JSON (``amount``) next to the exact integer micro-units the
ledger holds (``amount_micro``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from arkserve.schemas.common import _In  # unknown fields and NUL characters are a 422, as in every body


class BalanceOut(BaseModel):
    username: str
    balance: float
    balance_micro: int
    currency: str
    overdraft_limit: float
    enforced: bool = Field(description="whether pay-as-you-go stops at the overdraft limit on this platform")
    month: str
    month_spent: float = Field(description="usage and prepaid purchases this month (UTC)")


class TopUpIn(_In):
    username: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0, le=1e9, description="currency units added to the balance")
    note: str = Field(default="", max_length=500)


class AdjustmentIn(_In):
    username: str = Field(min_length=1, max_length=64)
    amount: float = Field(ge=-1e9, le=1e9, description="a correction (+ or -); the ledger is never rewritten")
    note: str = Field(min_length=1, max_length=500, description="why")


class LedgerEntryOut(BaseModel):
    id: int
    username: str
    time: float
    kind: str
    amount: float
    amount_micro: int
    service: str
    instance_type: str
    replica: str
    billing: str
    seconds: int
    period_start: float | None
    period_end: float | None
    note: str


class DailySpendOut(BaseModel):
    day: str
    amount: float


class StatementLineOut(BaseModel):
    service: str
    instance_type: str
    billing: str
    hours: float
    amount: float


class StatementOut(BaseModel):
    username: str
    month: str
    currency: str
    lines: list[StatementLineOut]
    usage: float
    prepaid: float = Field(description="prepaid purchases and renewals")
    topups: float
    adjustments: float
    opening_balance: float
    closing_balance: float


class PrepaidIn(_In):
    instance_type: str = Field(min_length=1, max_length=64)
    count: int = Field(default=1, ge=1, le=1000)
    period: Literal["month", "year"] = "month"
    auto_renew: bool = False
    username: str | None = Field(default=None, description="admin: buy for this user (from their balance)")


class PrepaidPatch(_In):
    auto_renew: bool


class PrepaidOut(BaseModel):
    id: int
    username: str
    instance_type: str
    count: int
    in_use: int = Field(description="the owner's replicas of this type placed on prepaid instances (a crash-looping "
                                    "one still holds its instance)")
    period: str
    starts_at: float
    ends_at: float
    auto_renew: bool
    status: str
    price: float


class PrepaidFreeOut(BaseModel):
    instance_type: str
    held: int
    in_use: int
    free: int


class QuotaIn(_In):
    max_replicas: int | None = Field(default=None, ge=0, le=100000, description="null: unlimited")
    max_gpus: int | None = Field(default=None, ge=0, le=100000)
    max_prepaid: int | None = Field(default=None, ge=0, le=100000)


class QuotaOut(BaseModel):
    username: str
    max_replicas: int | None
    max_gpus: int | None
    max_prepaid: int | None
    used_replicas: int
    used_gpus: int
    used_prepaid: int
