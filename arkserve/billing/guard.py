"""Admission of desired state by the API: quotas (403 ``QuotaExceeded``) and balances (402 ``InsufficientBalance``).

Called inside the API's create/scale transaction before anything is written, so a refusal leaves nothing behind.
Only growth is checked: scaling down or changing other fields is never refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from arkserve.billing import accounts, ledger, prepaid
from arkserve.billing.admission import payg_refusal
from arkserve.billing.metering import from_micro
from arkserve.billing.prepaid import InsufficientBalance
from arkserve.domain.canary import canary_replicas
from arkserve.errors import Forbidden
from arkserve.settings import BillingSettings
from arkserve.store.services import ServiceRow
from arkserve.store.tables import instance_types, services


class QuotaExceeded(Forbidden):
    code = "QuotaExceeded"


def quota_error(what: str, used: int, asked: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(f"quota exceeded: {what} {used} in use + {asked} asked > limit {limit} (an admin sets "
                         "quotas: `arkserve quota set`)", details={"quota": what, "used": used, "limit": limit,
                                                                   "asked": asked})


def _gpus(conn: Connection, instance_type: str) -> int:
    row = conn.execute(select(instance_types.c.gpus).where(instance_types.c.name == instance_type)).first()
    return int(row[0]) if row else 0


def _desired_of_type(conn: Connection, owner_id: int, instance_type: str, exclude: int | None) -> int:
    total = 0
    for sid, spec, count in conn.execute(select(services.c.id, services.c.spec, services.c.replicas)
                                         .where(services.c.owner_id == owner_id)):
        if sid != exclude and (spec or {}).get("instance_type") == instance_type and \
                (spec or {}).get("billing", "auto") != "payg":
            total += int(count)
    return total


def admit(conn: Connection, settings: BillingSettings, owner_id: int, spec: Mapping[str, Any], replicas: int, *,
          service_id: int | None = None, old_spec: Mapping[str, Any] | None = None, old_replicas: int = 0) -> None:
    """Refuse (403/402) desired state that grows the owner's use past a quota or needs a balance they lack."""
    itype = str(spec.get("instance_type", ""))
    same_type = old_spec is not None and old_spec.get("instance_type") == itype
    before = old_replicas if same_type else 0
    if replicas <= before:
        return
    limits = accounts.get(conn, owner_id)
    used_replicas, used_gpus = accounts.desired_use(conn, owner_id, exclude_service=service_id)
    if limits["max_replicas"] is not None and used_replicas + replicas > limits["max_replicas"]:
        raise quota_error("replicas", used_replicas, replicas, limits["max_replicas"])
    gpus = _gpus(conn, itype) * replicas
    if limits["max_gpus"] is not None and gpus and used_gpus + gpus > limits["max_gpus"]:
        raise quota_error("gpus", used_gpus, gpus, limits["max_gpus"])
    mode = str(spec.get("billing") or "auto")
    if mode == "prepaid":
        return  # waits for a prepaid instance; never pay-as-you-go
    held = prepaid.active_counts(conn, time.time()).get(owner_id, {}).get(itype, 0)
    others = _desired_of_type(conn, owner_id, itype, service_id)
    free = max(0, held - others) if mode == "auto" else 0
    if replicas <= free:
        return  # the growth fits on the owner's free prepaid instances
    why = payg_refusal(conn, settings, owner_id, itype)
    if why is not None:
        have = ledger.balance(conn, owner_id)
        raise InsufficientBalance(why, details={"balance": from_micro(have), "currency": settings.currency,
                                                "overdraft_limit": settings.overdraft_limit})


def admit_scale(conn: Connection, settings: BillingSettings, svc: ServiceRow, replicas: int) -> None:
    """:func:`admit` for a service scaled to ``replicas`` as it stands (the autoscaler): with a canary, its
    replicas (a share of the stable count, ``domain/canary.py``) grow with it and count too."""
    def with_canary(n: int) -> int:
        return n + (canary_replicas(n, svc.canary_weight) if svc.canary_spec else 0)

    admit(conn, settings, svc.owner_id, svc.spec, with_canary(replicas), service_id=svc.id, old_spec=svc.spec,
          old_replicas=with_canary(svc.replicas))


def admit_prepaid(conn: Connection, owner_id: int, count: int, now: float) -> None:
    """A purchase of ``count`` prepaid instances within the owner's ``max_prepaid`` quota."""
    limit = accounts.get(conn, owner_id)["max_prepaid"]
    held = prepaid.held_count(conn, owner_id, now)
    if limit is not None and held + count > limit:
        raise quota_error("prepaid instances", held, count, limit)
