"""The admin's list of billing accounts: per user, the balance, this month's spend and the quotas with their use
(``GET /api/v1/billing/accounts``). The numbers are those of ``/billing/balance`` and ``/quotas/{username}``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BillingAccountOut(BaseModel):
    username: str
    balance: float
    balance_micro: int
    currency: str
    month: str = Field(description="the month (UTC) month_spent covers, YYYY-MM")
    month_spent: float = Field(description="usage and prepaid purchases this month (UTC)")
    max_replicas: int | None = Field(description="null: unlimited")
    max_gpus: int | None
    max_prepaid: int | None
    used_replicas: int
    used_gpus: int
    used_prepaid: int = Field(description="prepaid instances held now")
