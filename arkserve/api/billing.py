"""Billing: balances, top-ups and adjustments (admin), ledger entries, daily spend, monthly statements (JSON, CSV),
and the admin's list of every user's account (balance, month's spend, quotas), a page at a time.

A user sees their own account; an admin any (``?user=NAME``) and, for ledger entries, all (``?all=true``).
Prepaid instances and quotas live in :mod:`arkserve.api.prepaid`.
"""

from __future__ import annotations

import csv
import io
import time

from fastapi import APIRouter, Query, Request, Response

from arkserve.api import cursors
from arkserve.api.context import AppContext
from arkserve.api.security import Caller, Context, Principal
from arkserve.billing import accounts, ledger
from arkserve.billing.metering import from_micro, to_micro
from arkserve.billing.schemas import (
    AdjustmentIn,
    BalanceOut,
    DailySpendOut,
    LedgerEntryOut,
    StatementLineOut,
    StatementOut,
    TopUpIn,
)
from arkserve.errors import ValidationFailed
from arkserve.schemas import BillingAccountOut, ErrorBody
from arkserve.store import users as user_store
from arkserve.store.users import User

router = APIRouter(tags=["billing"], responses={404: {"description": "UserNotFound: no such user", "model": ErrorBody}})


def target_user(ctx: AppContext, caller: Principal, user: str | None) -> User:
    """The caller, or (admin only) the named user."""
    if not user or user == caller.user.username:
        return caller.user
    caller.require_admin()
    with ctx.store.read() as conn:
        return user_store.get(conn, user)


def balance_out(ctx: AppContext, user: User) -> BalanceOut:
    b = ctx.settings.billing
    now = time.time()
    month = ledger.current_month(now)
    start, end = ledger.month_bounds(month)
    with ctx.store.read() as conn:
        have = ledger.balance(conn, user.id)
        spent = sum(ledger.daily_spend(conn, user.id, start, end).values())
    return BalanceOut(username=user.username, balance=round(from_micro(have), 2), balance_micro=have,
                      currency=b.currency, overdraft_limit=b.overdraft_limit, enforced=b.enforce, month=month,
                      month_spent=round(from_micro(spent), 2))


@router.get("/billing/balance", response_model=BalanceOut, summary="Your balance and this month's spend "
            "(admin: ?user=NAME)")
def get_balance(caller: Caller, ctx: Context, user: str | None = None) -> BalanceOut:
    return balance_out(ctx, target_user(ctx, caller, user))


@router.get("/billing/accounts", response_model=list[BillingAccountOut],
            responses={200: {"headers": cursors.HEADERS},
                       403: {"description": "AccessDenied: not an admin", "model": ErrorBody}},
            summary="Every user's balance, this month's spend and quotas with their use, in username order, a page "
                    "at a time (admin)")
def list_accounts(caller: Caller, ctx: Context, request: Request, response: Response,
                  limit: int = Query(100, ge=1, le=1000, description="Users per page."),
                  cursor: str | None = Query(None, description="X-Next-Cursor of the previous page.")
                  ) -> list[BillingAccountOut]:
    caller.require_admin()
    shown = {"list": "billing-accounts"}
    after = cursors.decode(cursor, shown) if cursor else None
    b = ctx.settings.billing
    now = time.time()
    month = ledger.current_month(now)
    start, end = ledger.month_bounds(month)
    with ctx.store.read() as conn:
        page = accounts.account_page(conn, after=after, limit=limit, now=now, month_start=start, month_end=end)
    cursors.set_headers(response, request, page.total,
                        cursors.encode(page.last, shown) if page.last is not None else None)
    return [BillingAccountOut(username=a.username, balance=round(from_micro(a.balance_micro), 2),
                              balance_micro=a.balance_micro, currency=b.currency, month=month,
                              month_spent=round(from_micro(a.month_spent_micro), 2), **a.limits,
                              used_replicas=a.used_replicas, used_gpus=a.used_gpus, used_prepaid=a.used_prepaid)
            for a in page.rows]


def _credit(ctx: AppContext, caller: Principal, username: str, amount: float, kind: str, note: str) -> BalanceOut:
    caller.require_admin()
    if to_micro(amount) == 0:
        raise ValidationFailed("amount: must not be 0", field="amount")
    with ctx.store.begin() as conn:
        user = user_store.get(conn, username)
        ledger.add(conn, user.id, kind, to_micro(amount), time=time.time(),
                   note=f"{kind} by {caller.user.username}" + (f": {note}" if note else ""))
    return balance_out(ctx, user)


@router.post("/billing/topup", response_model=BalanceOut, summary="Top up a user's balance (admin)")
def top_up(body: TopUpIn, caller: Caller, ctx: Context) -> BalanceOut:
    return _credit(ctx, caller, body.username, body.amount, "topup", body.note)


@router.post("/billing/adjustments", response_model=BalanceOut,
             summary="Correct a balance with a new ledger entry, + or - (admin); nothing is ever rewritten")
def adjust(body: AdjustmentIn, caller: Caller, ctx: Context) -> BalanceOut:
    return _credit(ctx, caller, body.username, body.amount, "adjustment", body.note)


@router.get("/billing/usage", response_model=list[LedgerEntryOut],
            summary="Ledger entries, newest first (yours; admin: ?user=NAME or ?all=true)")
def usage(caller: Caller, ctx: Context, user: str | None = None, all: bool = False,
          kind: str | None = None, since: float | None = Query(None, allow_inf_nan=False),
          limit: int = Query(200, ge=1, le=5000)) -> list[LedgerEntryOut]:
    if all:
        caller.require_admin()
    who = None if all else target_user(ctx, caller, user).id
    with ctx.store.read() as conn:
        names = {u.id: u.username for u in user_store.list_all(conn)}
        rows = ledger.entries(conn, who, since=since, kind=kind, limit=limit)
    return [LedgerEntryOut(**{**r, "username": names.get(r["user_id"], ""),
                              "amount": round(from_micro(r["amount_micro"]), 6)}) for r in rows]


@router.get("/billing/daily", response_model=list[DailySpendOut],
            summary="Spend per UTC day over the last N days (yours; admin: ?user=NAME)")
def daily(caller: Caller, ctx: Context, user: str | None = None,
          days: int = Query(30, ge=1, le=366)) -> list[DailySpendOut]:
    who = target_user(ctx, caller, user)
    until = (time.time() // 86400 + 1) * 86400
    since = until - days * 86400
    with ctx.store.read() as conn:
        spend = ledger.daily_spend(conn, who.id, since, until)
    out = []
    for i in range(days):
        day = time.strftime("%Y-%m-%d", time.gmtime(since + i * 86400))
        out.append(DailySpendOut(day=day, amount=round(from_micro(spend.get(day, 0)), 2)))
    return out


def statement_out(ctx: AppContext, user: User, month: str) -> StatementOut:
    with ctx.store.read() as conn:
        st = ledger.statement(conn, user.id, month)

    def amount(kind: str) -> float:
        return round(from_micro(st["other"].get(kind, {}).get("amount_micro", 0)), 2)

    return StatementOut(
        username=user.username, month=month, currency=ctx.settings.billing.currency,
        lines=[StatementLineOut(service=ln["service"], instance_type=ln["instance_type"], billing=ln["billing"],
                                hours=round(ln["seconds"] / 3600, 4), amount=round(from_micro(ln["amount_micro"]), 2))
               for ln in st["lines"]],
        usage=round(from_micro(st["usage_micro"]), 2), prepaid=-(amount("prepaid") + amount("renewal")),
        topups=amount("topup"), adjustments=amount("adjustment"),
        opening_balance=round(from_micro(st["opening_micro"]), 2),
        closing_balance=round(from_micro(st["closing_micro"]), 2))


@router.get("/billing/statement", response_model=StatementOut,
            summary="A month's statement per service and instance type: hours, amount (format=csv: a CSV file)",
            responses={200: {"content": {"text/csv": {}}}})
def statement(caller: Caller, ctx: Context, month: str | None = None, user: str | None = None,
              format: str = Query("json", pattern="^(json|csv)$")) -> StatementOut | Response:
    who = target_user(ctx, caller, user)
    st = statement_out(ctx, who, month or ledger.current_month(time.time()))
    if format == "json":
        return st
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["month", "user", "service", "instance_type", "billing", "hours", f"amount_{st.currency}"])
    for ln in st.lines:
        w.writerow([st.month, st.username, ln.service, ln.instance_type, ln.billing, f"{ln.hours:.4f}",
                    f"{ln.amount:.2f}"])
    w.writerow([st.month, st.username, "(prepaid purchases)", "", "prepaid", "", f"{st.prepaid:.2f}"])
    w.writerow([st.month, st.username, "(total)", "", "", "", f"{st.usage + st.prepaid:.2f}"])
    return Response(buf.getvalue(), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="statement-{st.username}-{st.month}.csv"'})
