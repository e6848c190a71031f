"""The append-only ledger: entries in integer micro-units, balances, daily spend and monthly statements.

Nothing here updates or deletes a ledger row; a correction is a new ``adjustment`` entry.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

from sqlalchemy import Connection, func, insert, select

from arkserve.errors import ValidationFailed
from arkserve.store.tables import billing_ledger

KINDS = ("usage", "topup", "prepaid", "renewal", "adjustment")


def add(conn: Connection, user_id: int, kind: str, amount_micro: int, *, time: float, service: str = "",
        instance_type: str = "", replica: str = "", billing: str = "", seconds: int = 0,
        period_start: float | None = None, period_end: float | None = None, note: str = "") -> None:
    assert kind in KINDS, kind
    conn.execute(insert(billing_ledger).values(
        user_id=user_id, time=time, kind=kind, amount_micro=amount_micro, service=service,
        instance_type=instance_type, replica=replica, billing=billing, seconds=seconds, period_start=period_start,
        period_end=period_end, note=note[:2000]))


def balance(conn: Connection, user_id: int) -> int:
    """The user's balance in micro-units: the sum of their entries."""
    total = conn.execute(select(func.coalesce(func.sum(billing_ledger.c.amount_micro), 0))
                         .where(billing_ledger.c.user_id == user_id)).scalar_one()
    return int(total)


MONTH_RE = re.compile(r"[0-9]{4}-[0-9]{2}")


def month_bounds(month: str) -> tuple[float, float]:
    """``"2026-11"`` -> [start, end) as unix times (UTC). Only that form (ASCII digits, years 1970-9998): the
    month is echoed into a CSV file name and a header."""
    bad = ValidationFailed(f"month: expected YYYY-MM (1970-01 to 9998-12), got {month[:20]!r}", field="month")
    if not MONTH_RE.fullmatch(month):
        raise bad
    year, mon = int(month[:4]), int(month[5:])
    if not (1970 <= year <= 9998 and 1 <= mon <= 12):
        raise bad
    start = dt.datetime(year, mon, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(year, mon)[1]
    return start.timestamp(), (start + dt.timedelta(days=days)).timestamp()


def current_month(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m")


def entries(conn: Connection, user_id: int | None, *, since: float | None = None, until: float | None = None,
            kind: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    q = select(billing_ledger)
    if user_id is not None:
        q = q.where(billing_ledger.c.user_id == user_id)
    if since is not None:
        q = q.where(billing_ledger.c.time >= since)
    if until is not None:
        q = q.where(billing_ledger.c.time < until)
    if kind:
        q = q.where(billing_ledger.c.kind == kind)
    rows = conn.execute(q.order_by(billing_ledger.c.time.desc(), billing_ledger.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def statement(conn: Connection, user_id: int, month: str) -> dict[str, Any]:
    """One user's month: usage per service and instance type (seconds, amount), other entries, totals.

    An entry belongs to the month of its ``time`` (a usage entry's time is the end of the seconds it covers)."""
    start, end = month_bounds(month)
    c = billing_ledger.c
    usage = conn.execute(
        select(c.service, c.instance_type, c.billing, func.sum(c.seconds), func.sum(c.amount_micro))
        .where(c.user_id == user_id, c.kind == "usage", c.time >= start, c.time < end)
        .group_by(c.service, c.instance_type, c.billing).order_by(c.service, c.instance_type, c.billing))
    lines = [{"service": s, "instance_type": t, "billing": b, "seconds": int(sec or 0),
              "amount_micro": -int(amt or 0)} for s, t, b, sec, amt in usage]
    others = conn.execute(
        select(c.kind, func.sum(c.amount_micro), func.count()).where(
            c.user_id == user_id, c.kind != "usage", c.time >= start, c.time < end).group_by(c.kind))
    other = {k: {"amount_micro": int(a or 0), "entries": int(n)} for k, a, n in others}
    closing = int(conn.execute(select(func.coalesce(func.sum(c.amount_micro), 0))
                               .where(c.user_id == user_id, c.time < end)).scalar_one())
    opening = int(conn.execute(select(func.coalesce(func.sum(c.amount_micro), 0))
                               .where(c.user_id == user_id, c.time < start)).scalar_one())
    spent = sum(ln["amount_micro"] for ln in lines) - sum(
        v["amount_micro"] for k, v in other.items() if k in ("prepaid", "renewal"))
    return {"month": month, "lines": lines, "other": other, "usage_micro": sum(ln["amount_micro"] for ln in lines),
            "spent_micro": spent, "opening_micro": opening, "closing_micro": closing}


def daily_spend(conn: Connection, user_id: int | None, since: float, until: float) -> dict[str, int]:
    """Spend (usage and prepaid, as positive micro-units) per UTC day in [since, until)."""
    c = billing_ledger.c
    q = select(c.time, c.amount_micro).where(c.time >= since, c.time < until, c.amount_micro < 0,
                                             c.kind.in_(("usage", "prepaid", "renewal")))
    if user_id is not None:
        q = q.where(c.user_id == user_id)
    days: dict[str, int] = {}
    for t, amount in conn.execute(q):
        day = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")
        days[day] = days.get(day, 0) - int(amount)
    return days
