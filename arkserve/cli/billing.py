"""``arkserve billing …`` (balance, usage, statement, top-up, prepaid buy/list/renew) and ``arkserve quota …``.

A refusal prints the API's message and code: 402 ``InsufficientBalance`` exits 1, 403 ``QuotaExceeded`` exits 3
(docs/cli.md).
"""

from __future__ import annotations

import click

from arkserve.cli.context import api_errors, segment, state
from arkserve.cli.output import output_option, printable, render


@click.group("billing", help="Balance, usage, monthly statements and prepaid instances (docs/billing.md).")
def billing() -> None:
    pass


_user = click.option("--user", default=None, help="Admin: another user's account.")


@billing.command("balance", help="Your balance and this month's spend.")
@_user
@output_option
@api_errors
def balance(user: str | None, fmt: str) -> None:
    with state().client() as c:
        render(c.get("/billing/balance", user=user), fmt,
               ("username", "balance", "currency", "month", "month_spent", "overdraft_limit", "enforced"))


@billing.command("topup", help="Add AMOUNT to USERNAME's balance (admin).")
@click.argument("username")
@click.argument("amount", type=float)
@click.option("--note", default="")
@output_option
@api_errors
def topup(username: str, amount: float, note: str, fmt: str) -> None:
    with state().client() as c:
        render(c.post("/billing/topup", {"username": username, "amount": amount, "note": note}), fmt,
               ("username", "balance", "currency"))


@billing.command("usage", help="Ledger entries, newest first: usage per meter pass, top-ups, prepaid purchases.")
@_user
@click.option("--all", "all_users", is_flag=True, help="Admin: every user's entries.")
@click.option("--kind", type=click.Choice(["usage", "topup", "prepaid", "renewal", "adjustment"]), default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@output_option
@api_errors
def usage(user: str | None, all_users: bool, kind: str | None, limit: int, fmt: str) -> None:
    with state().client() as c:
        rows = c.get("/billing/usage", user=user, all="true" if all_users else None, kind=kind, limit=limit)
    render(rows, fmt, ("time", "username", "kind", "amount", "service", "instance_type", "replica", "billing",
                       "seconds"))


@billing.command("statement", help="A month's statement per service and instance type (default: this month).")
@click.option("--month", default=None, help="YYYY-MM (UTC).")
@_user
@click.option("--csv", "as_csv", is_flag=True, help="Print the CSV export.")
@output_option
@api_errors
def statement(month: str | None, user: str | None, as_csv: bool, fmt: str) -> None:
    with state().client() as c:
        if as_csv:
            for chunk in c.stream_text("/billing/statement", month=month, user=user, format="csv"):
                click.echo(chunk, nl=False)
            return
        st = c.get("/billing/statement", month=month, user=user)
    if fmt != "table":
        render(st, fmt)
        return
    click.echo(printable(f"{st['username']} {st['month']} ({st['currency']})"))
    render(st["lines"], fmt, ("service", "instance_type", "billing", "hours", "amount"))
    click.echo(f"usage {st['usage']:.2f}  prepaid {st['prepaid']:.2f}  top-ups {st['topups']:.2f}  "
               f"balance {st['opening_balance']:.2f} -> {st['closing_balance']:.2f}")


@billing.group("prepaid", help="Prepaid (monthly/yearly) instances.")
def prepaid_group() -> None:
    pass


_PREPAID_COLUMNS = ("id", "username", "instance_type", "count", "in_use", "period", "ends_at", "auto_renew",
                    "status", "price")


@prepaid_group.command("buy", help="Buy COUNT instances of INSTANCE_TYPE for a month or a year, from your balance.")
@click.argument("instance_type")
@click.option("--count", type=int, default=1, show_default=True)
@click.option("--period", type=click.Choice(["month", "year"]), default="month", show_default=True)
@click.option("--auto-renew", is_flag=True, help="Renew from the balance when the period ends.")
@_user
@output_option
@api_errors
def buy(instance_type: str, count: int, period: str, auto_renew: bool, user: str | None, fmt: str) -> None:
    body = {"instance_type": instance_type, "count": count, "period": period, "auto_renew": auto_renew}
    with state().client() as c:
        render(c.post("/billing/prepaid", {**body, **({"username": user} if user else {})}), fmt, _PREPAID_COLUMNS)


@prepaid_group.command("list", help="Your prepaid instances (active; --expired: all).")
@_user
@click.option("--all", "all_users", is_flag=True, help="Admin: every user's.")
@click.option("--expired", is_flag=True, help="Include expired ones.")
@output_option
@api_errors
def list_prepaid(user: str | None, all_users: bool, expired: bool, fmt: str) -> None:
    with state().client() as c:
        render(c.get("/billing/prepaid", user=user, all="true" if all_users else None,
                     expired="true" if expired else None), fmt, _PREPAID_COLUMNS)


@prepaid_group.command("renew", help="Turn auto-renew of prepaid instance ID on (--on) or off (--off).")
@click.argument("prepaid_id", type=int)
@click.option("--on/--off", "auto_renew", default=True)
@output_option
@api_errors
def renew(prepaid_id: int, auto_renew: bool, fmt: str) -> None:
    with state().client() as c:
        render(c.patch(f"/billing/prepaid/{prepaid_id}", {"auto_renew": auto_renew}), fmt, _PREPAID_COLUMNS)


@click.group("quota", help="Per-user quotas: replicas, GPUs, prepaid instances.")
def quota() -> None:
    pass


_QUOTA_COLUMNS = ("username", "max_replicas", "used_replicas", "max_gpus", "used_gpus", "max_prepaid",
                  "used_prepaid")


@quota.command("get", help="A user's quotas and use (default: yours).")
@click.argument("username", required=False)
@output_option
@api_errors
def quota_get(username: str | None, fmt: str) -> None:
    with state().client() as c:
        name = username or c.get("/whoami")["username"]
        render(c.get(f"/quotas/{segment(name, 'user name')}"), fmt, _QUOTA_COLUMNS)


@quota.command("set", help="Set a user's quotas (admin); an option left out is unlimited.")
@click.argument("username")
@click.option("--max-replicas", type=int, default=None)
@click.option("--max-gpus", type=int, default=None)
@click.option("--max-prepaid", type=int, default=None)
@output_option
@api_errors
def quota_set(username: str, max_replicas: int | None, max_gpus: int | None, max_prepaid: int | None,
              fmt: str) -> None:
    path = f"/quotas/{segment(username, 'user name')}"
    with state().client() as c:
        render(c.request("PUT", path, json={"max_replicas": max_replicas, "max_gpus": max_gpus,
                                            "max_prepaid": max_prepaid}), fmt, _QUOTA_COLUMNS)
