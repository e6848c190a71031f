"""Per-user billing accounts: quotas an admin sets (max replicas, GPUs, prepaid instances) and what a user uses.

A missing row or a null limit means unlimited. ``low_since`` is the meter's note of when a balance reached the
overdraft limit (the grace before pay-as-you-go services are scaled to 0 counts from it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from arkserve.domain.canary import canary_replicas
from arkserve.store.tables import billing_accounts, instance_types, services

LIMITS = ("max_replicas", "max_gpus", "max_prepaid")


def get(conn: Connection, user_id: int) -> dict[str, Any]:
    row = conn.execute(select(billing_accounts).where(billing_accounts.c.user_id == user_id)).first()
    if row is None:
        return {"user_id": user_id, **{k: None for k in LIMITS}, "low_since": None}
    return dict(row._mapping)


def _upsert(conn: Connection, user_id: int, values: dict[str, Any], now: float) -> None:
    exists = conn.execute(select(billing_accounts.c.user_id).where(billing_accounts.c.user_id == user_id)).first()
    if exists:
        conn.execute(update(billing_accounts).where(billing_accounts.c.user_id == user_id)
                     .values(updated_at=now, **values))
    else:
        conn.execute(insert(billing_accounts).values(user_id=user_id, updated_at=now, **values))


def set_limits(conn: Connection, user_id: int, limits: dict[str, int | None], now: float) -> None:
    _upsert(conn, user_id, {k: v for k, v in limits.items() if k in LIMITS}, now)


def set_low_since(conn: Connection, user_id: int, low_since: float | None, now: float) -> None:
    _upsert(conn, user_id, {"low_since": low_since}, now)


def desired_use(conn: Connection, user_id: int, *, exclude_service: int | None = None) -> tuple[int, int]:
    """(replicas, GPUs) the user's services ask for (desired counts, a canary's replicas included; a deleting
    service counts until gone)."""
    c = services.c
    q = select(c.id, c.spec, c.replicas, c.canary_spec, c.canary_weight).where(c.owner_id == user_id)
    gpus_of = {name: int(g) for name, g in conn.execute(select(instance_types.c.name, instance_types.c.gpus))}
    replicas = gpus = 0
    for sid, spec, count, canary_spec, weight in conn.execute(q):
        if sid == exclude_service:
            continue
        runs = [(spec, int(count))]
        if canary_spec:
            runs.append((canary_spec, canary_replicas(int(count), int(weight))))
        for what, n in runs:
            replicas += n
            gpus += n * gpus_of.get(str((what or {}).get("instance_type", "")), 0)
    return replicas, gpus
