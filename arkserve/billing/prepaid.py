"""Prepaid instances (包年包月): buying N instances of a type for a month or a year, renewal and expiry.

A purchase is paid from the balance in the same transaction that records it (a ``prepaid`` ledger entry), and
refused with 402 ``InsufficientBalance`` when the balance is short. The meter loop renews (``renewal`` entry)
or expires them when they end, in order, a period at a time (``arkserve.billing.meter.catch_up``).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from arkserve.billing import ledger
from arkserve.billing.metering import from_micro, to_micro
from arkserve.errors import NotFound, PermanentError
from arkserve.store.db import bump
from arkserve.store.tables import prepaid_instances

MONTH_HOURS = 720
YEAR_MONTHS = 10  # a year costs ten months


class InsufficientBalance(PermanentError):
    status = 402
    code = "InsufficientBalance"


def add_months(t: float, months: int) -> float:
    """The same day and time ``months`` later (clamped to the month's last day), UTC."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return d.replace(year=year, month=month, day=day).timestamp()


def period_price(price_per_hour: float, period: str, count: int, discount: float) -> int:
    """What ``count`` instances cost for one period, in micro-units."""
    month = to_micro(price_per_hour * MONTH_HOURS * (1.0 - discount))
    return month * (YEAR_MONTHS if period == "year" else 1) * count


def _end(start: float, period: str) -> float:
    return add_months(start, 12 if period == "year" else 1)


def buy(conn: Connection, user_id: int, instance_type: str, price_per_hour: float, *, count: int, period: str,
        auto_renew: bool, now: float, discount: float, currency: str) -> dict[str, Any]:
    bump(conn, "billing")  # serialised with meter passes and other purchases: the balance read below holds
    price = period_price(price_per_hour, period, count, discount)
    have = ledger.balance(conn, user_id)
    if have < price:
        raise InsufficientBalance(
            f"insufficient balance: {count}x {instance_type} for a {period} costs {from_micro(price):.2f} {currency}, "
            f"the balance is {from_micro(have):.2f} {currency}",
            details={"balance": from_micro(have), "price": from_micro(price), "currency": currency})
    end = _end(now, period)
    key = conn.execute(insert(prepaid_instances).values(
        user_id=user_id, instance_type=instance_type, count=count, period=period, starts_at=now, ends_at=end,
        auto_renew=auto_renew, status="active", price_micro=price, created_at=now)).inserted_primary_key
    new_id = key[0] if key else 0
    ledger.add(conn, user_id, "prepaid", -price, time=now, instance_type=instance_type, period_start=now,
               period_end=end, note=f"prepaid #{new_id}: {count}x {instance_type}, one {period}")
    return get(conn, int(new_id))


def get(conn: Connection, prepaid_id: int) -> dict[str, Any]:
    row = conn.execute(select(prepaid_instances).where(prepaid_instances.c.id == prepaid_id)).first()
    if row is None:
        raise NotFound(f"prepaid instance #{prepaid_id} not found", code="PrepaidNotFound")
    return dict(row._mapping)


def list_for(conn: Connection, user_id: int | None, *, active_only: bool = False) -> list[dict[str, Any]]:
    q = select(prepaid_instances).order_by(prepaid_instances.c.id)
    if user_id is not None:
        q = q.where(prepaid_instances.c.user_id == user_id)
    if active_only:
        q = q.where(prepaid_instances.c.status == "active")
    return [dict(r._mapping) for r in conn.execute(q)]


def set_auto_renew(conn: Connection, prepaid_id: int, auto_renew: bool) -> None:
    conn.execute(update(prepaid_instances).where(prepaid_instances.c.id == prepaid_id).values(auto_renew=auto_renew))


def active_counts(conn: Connection, now: float) -> dict[int, dict[str, int]]:
    """``{user_id: {instance_type: count}}`` of prepaid instances active at ``now``."""
    c = prepaid_instances.c
    rows = conn.execute(select(c.user_id, c.instance_type, func.sum(c.count)).where(
        c.status == "active", c.starts_at <= now, c.ends_at > now).group_by(c.user_id, c.instance_type))
    out: dict[int, dict[str, int]] = {}
    for user_id, itype, n in rows:
        out.setdefault(int(user_id), {})[str(itype)] = int(n)
    return out


def held_count(conn: Connection, user_id: int, now: float) -> int:
    return sum(active_counts(conn, now).get(user_id, {}).values())


def due(conn: Connection, now: float) -> list[dict[str, Any]]:
    """Active prepaid instances whose period has ended."""
    c = prepaid_instances.c
    return [dict(r._mapping) for r in conn.execute(select(prepaid_instances).where(
        c.status == "active", c.ends_at <= now).order_by(c.id))]


def renew(conn: Connection, row: dict[str, Any], at: float) -> bool:
    """Charge the next period (a ``renewal`` entry dated ``at``, the meter passes the period's end) and extend it
    by one period from its end (still past for a meter that was down longer: it renews again); False (nothing
    written) when the balance is short."""
    if ledger.balance(conn, row["user_id"]) < row["price_micro"]:
        return False
    start, end = row["ends_at"], _end(row["ends_at"], row["period"])
    conn.execute(update(prepaid_instances).where(prepaid_instances.c.id == row["id"]).values(ends_at=end))
    ledger.add(conn, row["user_id"], "renewal", -row["price_micro"], time=at, instance_type=row["instance_type"],
               period_start=start, period_end=end,
               note=f"prepaid #{row['id']} renewed: {row['count']}x {row['instance_type']}, one {row['period']}")
    return True


def expire(conn: Connection, prepaid_id: int) -> None:
    conn.execute(update(prepaid_instances).where(prepaid_instances.c.id == prepaid_id).values(status="expired"))
