"""Per-user billing accounts: quotas an admin sets (max replicas, GPUs, prepaid instances) and what a user uses.

A missing row or a null limit means unlimited. ``low_since`` is the meter's note of when a balance reached the
overdraft limit (the grace before pay-as-you-go services are scaled to 0 counts from it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from arkserve.domain.canary import canary_replicas
from arkserve.store.tables import billing_accounts, billing_ledger, instance_types, prepaid_instances, services, users
from arkserve.store.upsert import upsert

LIMITS = ("max_replicas", "max_gpus", "max_prepaid")


def get(conn: Connection, user_id: int) -> dict[str, Any]:
    row = conn.execute(select(billing_accounts).where(billing_accounts.c.user_id == user_id)).first()
    if row is None:
        return {"user_id": user_id, **{k: None for k in LIMITS}, "low_since": None}
    return dict(row._mapping)


def _upsert(conn: Connection, user_id: int, values: dict[str, Any], now: float) -> None:
    """Set ``values`` on the user's row, created if missing (one statement: an admin's quota PUTs racing each other
    or the meter's ``low_since`` all succeed on PostgreSQL too)."""
    upsert(conn, billing_accounts, {"user_id": user_id}, {"updated_at": now, **values})


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


@dataclass(frozen=True)
class Account:
    """One user's line in the admin's list: what ``/billing/balance`` and ``/quotas/{username}`` say of them."""

    username: str
    balance_micro: int
    month_spent_micro: int  # usage and prepaid purchases in the month, as a positive amount
    limits: dict[str, int | None]
    used_replicas: int
    used_gpus: int
    used_prepaid: int


@dataclass(frozen=True)
class AccountPage:
    rows: list[Account]
    total: int  # every user, on all pages
    last: str | None  # the username to continue after when there are more, else None


def account_page(conn: Connection, *, after: str | None, limit: int, now: float, month_start: float,
                 month_end: float) -> AccountPage:
    """Up to ``limit`` users' accounts in username order after ``after`` (keyset on the unique name).

    A fixed number of queries whatever the page size (the users, their count, then one grouped query each for
    balances, the month's spend, limits, services and prepaid instances): never one per user. A user with no
    ledger entry, account row or service is all zeros and unlimited."""
    q = select(users.c.id, users.c.username).order_by(users.c.username).limit(limit + 1)
    if after is not None:
        q = q.where(users.c.username > after)
    page = [(int(i), str(n)) for i, n in conn.execute(q)]
    more = len(page) > limit
    page = page[:limit]
    total = int(conn.execute(select(func.count()).select_from(users)).scalar_one())
    ids = [i for i, _ in page]
    if not ids:
        return AccountPage([], total, None)
    c = billing_ledger.c
    balances = {int(u): int(v) for u, v in conn.execute(
        select(c.user_id, func.sum(c.amount_micro)).where(c.user_id.in_(ids)).group_by(c.user_id))}
    spent = {int(u): -int(v) for u, v in conn.execute(  # as ledger.daily_spend counts it, summed over the month
        select(c.user_id, func.sum(c.amount_micro)).where(
            c.user_id.in_(ids), c.time >= month_start, c.time < month_end, c.amount_micro < 0,
            c.kind.in_(("usage", "prepaid", "renewal"))).group_by(c.user_id))}
    limits = {int(r.user_id): {k: r._mapping[k] for k in LIMITS} for r in conn.execute(
        select(billing_accounts).where(billing_accounts.c.user_id.in_(ids)))}
    sizes = gpu_sizes(conn)
    use: dict[int, list[int]] = {}
    s = services.c
    for owner, spec, count, canary_spec, weight in conn.execute(
            select(s.owner_id, s.spec, s.replicas, s.canary_spec, s.canary_weight).where(s.owner_id.in_(ids))):
        mine = use.setdefault(int(owner), [0, 0])
        for what, n in service_parts(spec or {}, int(count), canary_spec, int(weight or 0)):  # as desired_use
            mine[0] += n
            mine[1] += part_gpus(sizes, what, n)
    p = prepaid_instances.c
    held = {int(u): int(n) for u, n in conn.execute(  # as prepaid.active_counts, summed over instance types
        select(p.user_id, func.sum(p.count)).where(p.user_id.in_(ids), p.status == "active", p.starts_at <= now,
                                                   p.ends_at > now).group_by(p.user_id))}
    rows = [Account(username=name, balance_micro=balances.get(uid, 0), month_spent_micro=spent.get(uid, 0),
                    limits=limits.get(uid, dict.fromkeys(LIMITS)), used_replicas=use.get(uid, [0, 0])[0],
                    used_gpus=use.get(uid, [0, 0])[1], used_prepaid=held.get(uid, 0)) for uid, name in page]
    return AccountPage(rows, total, page[-1][1] if more else None)
