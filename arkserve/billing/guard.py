"""Admission of desired state by the API: quotas (403 ``QuotaExceeded``) and balances (402 ``InsufficientBalance``).

Called inside the API's create/scale transaction before anything is written, so a refusal leaves nothing behind.
Only growth is checked: scaling down or changing other fields is never refused. Each check first locks the owner's
user row (``users.lock``) for the rest of the transaction, so two concurrent creates on PostgreSQL cannot both pass
a quota that only one of them fits.
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
from arkserve.domain.services import revision
from arkserve.errors import Forbidden
from arkserve.settings import BillingSettings
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.services import ServiceRow
from arkserve.store.tables import services


class QuotaExceeded(Forbidden):
    code = "QuotaExceeded"


def quota_error(what: str, used: int, asked: int, limit: int) -> QuotaExceeded:
    return QuotaExceeded(f"quota exceeded: {what} {used} in use + {asked} asked > limit {limit} (an admin sets "
                         "quotas: `arkserve quota set`)", details={"quota": what, "used": used, "limit": limit,
                                                                   "asked": asked})


def _type(spec: Mapping[str, Any]) -> str:
    return str(spec.get("instance_type", ""))


def _mode(spec: Mapping[str, Any]) -> str:
    return str(spec.get("billing") or "auto")


def _desired_of_type(conn: Connection, owner_id: int, instance_type: str, exclude: int | None) -> int:
    """The owner's other services' replicas of this type that may take its prepaid instances (canaries too)."""
    total = 0
    c = services.c
    for sid, spec, count, canary_spec, weight in conn.execute(
            select(c.id, c.spec, c.replicas, c.canary_spec, c.canary_weight).where(c.owner_id == owner_id)):
        if sid == exclude:
            continue
        for what, n in accounts.service_parts(spec or {}, int(count), canary_spec, int(weight or 0)):
            if _type(what) == instance_type and _mode(what) != "payg":
                total += n
    return total


def _stable_count(total: int, weight: int) -> int:
    """The stable count ``n`` of a service with a canary whose two revisions want ``total`` replicas together
    (``n + canary_replicas(n, weight) == total``)."""
    n = total * 100 // (100 + weight)
    while n > 0 and n + canary_replicas(n, weight) > total:
        n -= 1
    while n + 1 + canary_replicas(n + 1, weight) <= total:
        n += 1
    return n


def _after(svc: ServiceRow | None, spec: Mapping[str, Any], replicas: int) -> list[accounts.Part]:
    """The parts a service will want after an :func:`admit` call (``replicas`` counts a canary's too)."""
    if svc is None or not svc.canary_spec:
        return [(spec, replicas)]
    if revision(spec) == revision(svc.spec):  # scaled or changed in place (api/services.py): the canary follows
        n = _stable_count(replicas, svc.canary_weight)
        canary = {**svc.canary_spec, **{k: v for k, v in spec.items() if svc.spec.get(k) != v}}
        return accounts.service_parts(spec, n, canary, svc.canary_weight)
    return [(spec, replicas)]  # the canary promoted (or another change): its spec alone; canaries: admit_canary


def admit(conn: Connection, settings: BillingSettings, owner_id: int, spec: Mapping[str, Any], replicas: int, *,
          service_id: int | None = None, old_spec: Mapping[str, Any] | None = None, old_replicas: int = 0) -> None:
    """Refuse (403/402) desired state that grows the owner's use past a quota or needs a balance they lack.

    ``replicas`` counts all the service will want (a canary's replicas too). For an existing service
    (``service_id``) what it wants now, stable and canary part each at its own instance type, is read from the
    store; without one, ``old_spec`` x ``old_replicas``."""
    user_store.lock(conn, owner_id)  # before the service is read: what it wants now is what the last admission left
    svc = next(iter(service_store.by_ids(conn, [service_id])), None) if service_id is not None else None
    if svc is not None:
        before = accounts.service_parts(svc.spec, svc.replicas, svc.canary_spec, svc.canary_weight)
    else:
        before = [(old_spec, old_replicas)] if old_spec is not None else []
    _admit_parts(conn, settings, owner_id, before, _after(svc, spec, replicas), service_id)


def admit_scale(conn: Connection, settings: BillingSettings, svc: ServiceRow, replicas: int) -> None:
    """:func:`admit` for a service scaled to ``replicas`` as it stands (the autoscaler): with a canary, its
    replicas (a share of the stable count, ``domain/canary.py``) grow with it and count too, at its own type."""
    def parts(n: int) -> list[accounts.Part]:
        return accounts.service_parts(svc.spec, n, svc.canary_spec, svc.canary_weight)

    user_store.lock(conn, svc.owner_id)
    _admit_parts(conn, settings, svc.owner_id, parts(svc.replicas), parts(replicas), svc.id)


def admit_canary(conn: Connection, settings: BillingSettings, svc: ServiceRow, canary_spec: Mapping[str, Any],
                 stable: int, weight: int) -> None:
    """:func:`admit` for a canary started, replaced or re-weighted (with the stable count set to ``stable``): both
    parts exactly, where :func:`admit` is given only their total and must take the stable count as unchanged."""
    user_store.lock(conn, svc.owner_id)
    _admit_parts(conn, settings, svc.owner_id,
                 accounts.service_parts(svc.spec, svc.replicas, svc.canary_spec, svc.canary_weight),
                 accounts.service_parts(svc.spec, stable, canary_spec, weight), svc.id)


def _admit_parts(conn: Connection, settings: BillingSettings, owner_id: int, before: list[accounts.Part],
                 after: list[accounts.Part], service_id: int | None) -> None:
    """One service going from ``before`` to ``after`` (its stable and canary parts, each at its own type): only
    what grows is checked (the replica count, the GPUs, the replicas of each instance type). The callers have
    locked the owner's user row."""
    sizes = accounts.gpu_sizes(conn)
    limits = accounts.get(conn, owner_id)
    used_replicas, used_gpus = accounts.desired_use(conn, owner_id, exclude_service=service_id)
    replicas = sum(n for _, n in after)
    if replicas > sum(n for _, n in before) and limits["max_replicas"] is not None and \
            used_replicas + replicas > limits["max_replicas"]:
        raise quota_error("replicas", used_replicas, replicas, limits["max_replicas"])
    gpus = sum(accounts.part_gpus(sizes, s, n) for s, n in after)
    if gpus > sum(accounts.part_gpus(sizes, s, n) for s, n in before) and limits["max_gpus"] is not None and \
            used_gpus + gpus > limits["max_gpus"]:
        raise quota_error("gpus", used_gpus, gpus, limits["max_gpus"])
    held_of = prepaid.active_counts(conn, time.time()).get(owner_id, {})
    for itype in dict.fromkeys(_type(s) for s, _ in after):
        mine = [(_mode(s), n) for s, n in after if _type(s) == itype]
        if sum(n for _, n in mine) <= sum(n for s, n in before if _type(s) == itype):
            continue  # no growth of this type
        payg = sum(n for m, n in mine if m == "payg")
        auto = sum(n for m, n in mine if m == "auto")  # "prepaid" waits for a prepaid instance, never pay-as-you-go
        free = max(0, held_of.get(itype, 0) - _desired_of_type(conn, owner_id, itype, service_id)) if auto else 0
        if payg + max(0, auto - free) == 0:
            continue  # fits on the owner's free prepaid instances
        why = payg_refusal(conn, settings, owner_id, itype)
        if why is not None:
            have = ledger.balance(conn, owner_id)
            raise InsufficientBalance(why, details={"balance": from_micro(have), "currency": settings.currency,
                                                    "overdraft_limit": settings.overdraft_limit})


def admit_prepaid(conn: Connection, owner_id: int, count: int, now: float) -> None:
    """A purchase of ``count`` prepaid instances within the owner's ``max_prepaid`` quota."""
    user_store.lock(conn, owner_id)
    limit = accounts.get(conn, owner_id)["max_prepaid"]
    held = prepaid.held_count(conn, owner_id, now)
    if limit is not None and held + count > limit:
        raise quota_error("prepaid instances", held, count, limit)
