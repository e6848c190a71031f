"""What billing says when the reconciler places a replica: prepaid or pay-as-you-go, and which capacity is reserved.

The contract between capacity (``arkserve/capacity``, which places replicas) and billing (which owns prepaid
instances and balances). Placement calls :func:`billing_mode` for each replica it is about to place and
:func:`reserved` to keep other users' pay-as-you-go replicas off capacity that a user has prepaid.

Placement's answer is where a replica starts, not where it stays: the meter revisits it every pass
(``arkserve.billing.metering.demote`` / ``promote``), billing a replica beyond its owner's active prepaid instances
pay-as-you-go and moving pay-as-you-go replicas onto instances that became free (a rolling update's old replica
gone, another instance bought), with their rows' ``billing`` updated so that ``on_prepaid`` below stays true.

The balance rule needs the platform's billing settings; the process that places replicas (the reconciler) hands
them over once with :func:`configure` (the meter hook does). Unconfigured, balances are not enforced.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from arkserve.billing import ledger, prepaid
from arkserve.billing.metering import from_micro, to_micro
from arkserve.errors import TemporaryError
from arkserve.settings import BillingSettings
from arkserve.store.tables import instance_types

_settings = BillingSettings()


def configure(settings: BillingSettings) -> None:
    """The billing settings of this process (set once at start, before placing)."""
    global _settings
    _settings = settings


def price_per_hour(conn: Connection, instance_type: str) -> float:
    row = conn.execute(select(instance_types.c.price_per_hour).where(instance_types.c.name == instance_type)).first()
    return float(row[0]) if row else 0.0


def payg_refusal(conn: Connection, settings: BillingSettings, owner_id: int, instance_type: str) -> str | None:
    """Why a new pay-as-you-go replica of this type may not start for this owner (None: it may)."""
    if not settings.enforce or price_per_hour(conn, instance_type) <= 0:
        return None
    have = ledger.balance(conn, owner_id)
    if have > to_micro(settings.overdraft_limit):
        return None
    return (f"insufficient balance: {from_micro(have):.2f} {settings.currency} (pay-as-you-go needs more than "
            f"{settings.overdraft_limit:.2f}); top up, or use a prepaid instance")


def billing_mode(conn: Connection, owner_id: int, instance_type: str, spec: Mapping[str, Any],
                 on_prepaid: int) -> str:
    """``"prepaid"`` when the owner has a free prepaid instance of the type (and the spec allows it), else ``"payg"``.

    ``on_prepaid`` is how many of the owner's live replicas of that type already run on prepaid instances. A
    ``"payg"`` answer is not for good: the meter moves the replica onto a prepaid instance that frees up later.
    Raises ``arkserve.errors.TemporaryError`` (code ``InsufficientBalance``) when a pay-as-you-go replica may not
    start because the balance is at the overdraft limit; the replica then stays pending with that message."""
    mode = str(spec.get("billing") or "auto")
    if mode != "payg":
        held = prepaid.active_counts(conn, time.time()).get(owner_id, {}).get(instance_type, 0)
        if held > on_prepaid:
            return "prepaid"
        if mode == "prepaid":
            raise TemporaryError(f"no free prepaid {instance_type} instance ({on_prepaid} of {held} in use); buy "
                                 "one, or let the service use pay-as-you-go (billing: auto)",
                                 code="NoFreePrepaidInstance")
    why = payg_refusal(conn, _settings, owner_id, instance_type)
    if why is not None:
        raise TemporaryError(why, code="InsufficientBalance")
    return "payg"


def reserved(conn: Connection, now: float) -> dict[int, dict[str, int]]:
    """Active prepaid instances: ``{user_id: {instance_type: count}}``."""
    return prepaid.active_counts(conn, now)
