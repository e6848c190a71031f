"""Per-user billing accounts: quotas an admin sets (max replicas, GPUs, prepaid instances) and what a user uses.

A missing row or a null limit means unlimited. ``low_since`` is the meter's note of when a balance reached the
overdraft limit (the grace before pay-as-you-go services are scaled to 0 counts from it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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


Part = tuple[Mapping[str, Any], int]  # one part of a service (its stable or its canary revision): spec, replicas


def service_parts(spec: Mapping[str, Any], replicas: int, canary_spec: Mapping[str, Any] | None,
                  weight: int) -> list[Part]:
    """A service's desired replicas by revision: the stable spec's, then a canary's (its share of the stable count,
    ``domain/canary.py``), each sized and priced by its own spec's instance type."""
    parts: list[Part] = [(spec, replicas)]
    if canary_spec:
        parts.append((canary_spec, canary_replicas(replicas, weight)))
    return parts


def gpu_sizes(conn: Connection) -> dict[str, tuple[int, float]]:
    """``{instance type: (whole GPUs, GPU fraction)}``."""
    t = instance_types.c
    return {name: (int(g or 0), float(f or 0.0)) for name, g, f in conn.execute(select(t.name, t.gpus,
                                                                                        t.gpu_fraction))}


def part_gpus(sizes: Mapping[str, tuple[int, float]], spec: Mapping[str, Any] | None, replicas: int) -> int:
    """GPUs one service part counts against ``max_gpus``: replicas x the type's GPUs, or for a fractional type
    (``gpu_fraction``) ``ceil(replicas x fraction)`` (4 x 0.5 -> 2; 1 x 0.5 -> 1)."""
    gpus, fraction = sizes.get(str((spec or {}).get("instance_type", "")), (0, 0.0))
    if gpus:
        return replicas * gpus
    return math.ceil(round(replicas * fraction, 9)) if fraction > 0 else 0


def desired_use(conn: Connection, user_id: int, *, exclude_service: int | None = None) -> tuple[int, int]:
    """(replicas, GPUs) the user's services ask for (desired counts, a canary's replicas included at its own
    instance type; a deleting service counts until gone)."""
    c = services.c
    q = select(c.id, c.spec, c.replicas, c.canary_spec, c.canary_weight).where(c.owner_id == user_id)
    sizes = gpu_sizes(conn)
    replicas = gpus = 0
    for sid, spec, count, canary_spec, weight in conn.execute(q):
        if sid == exclude_service:
            continue
        for what, n in service_parts(spec or {}, int(count), canary_spec, int(weight or 0)):
            replicas += n
            gpus += part_gpus(sizes, what, n)
    return replicas, gpus
