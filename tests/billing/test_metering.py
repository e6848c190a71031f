"""Metering with a controllable clock on real stores: exact amounts for scale up/down, restarts of the meter,
crashed replicas, rolling updates, prepaid runs; and the rounding rule itself, table-driven."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from arkserve.billing import ledger
from arkserve.billing.meter import Meter
from arkserve.billing.metering import amount_for, to_micro
from arkserve.settings import BillingSettings
from arkserve.store.tables import billing_stops
from tests.billing.conftest import Billing

T0 = 1_800_000_000.0


@pytest.mark.parametrize(("seconds", "price_per_hour", "micro"), [
    (0, 3.6, 0),
    (1, 3.6, 60_000),  # one-minute minimum
    (59, 3.6, 60_000),
    (60, 3.6, 60_000),
    (61, 3.6, 61_000),
    (3600, 0.05, 50_000),
    (1, 0.05, 833),  # 60 s of 0.05/h = 833.33 -> 833
    (90, 0.07, 1750),  # 1750.0
    (3601, 1.0, 1_000_278),  # 1000277.7 -> half up
    (100, 0.0, 0),
])
def test_the_rounding_rule(seconds: int, price_per_hour: float, micro: int) -> None:
    assert amount_for(seconds, to_micro(price_per_hour)) == micro


def test_partial_passes_add_up_to_the_whole_run() -> None:
    price = to_micro(0.07)
    for step in (1, 7, 13, 59, 61):
        billed, total = 0, 0
        for s in range(step, 4000, step):
            billed += amount_for(s, price) - total
            total = amount_for(s, price)
        assert billed == amount_for(s, price)


def test_scale_up_and_down_bills_each_replica_from_start_to_last_look(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("r1", sid, T0)
    billing.tick(T0 + 10)
    assert billing.billed("r1") == (10, 60_000)  # minimum minute, charged on first sight
    billing.replica("r2", sid, T0 + 30)  # scaled up
    billing.tick(T0 + 100)
    billing.tick(T0 + 140)
    billing.remove("r1")  # scaled down: the row is gone
    billing.tick(T0 + 200)
    billing.tick(T0 + 200)  # the same instant again: nothing new
    assert billing.billed("r1") == (140, 140_000)
    assert billing.billed("r2") == (170, 170_000)
    assert billing.billed() == (310, 310_000)
    with billing.store.read() as conn:  # the month's statement: per service and instance type
        st = ledger.statement(conn, billing.user_id, ledger.current_month(T0))
    assert st["lines"] == [{"service": "web", "instance_type": "t.one", "billing": "payg", "seconds": 310,
                            "amount_micro": 310_000}]
    assert (st["usage_micro"], st["closing_micro"]) == (310_000, -310_000)


def test_a_replica_deleted_between_passes_is_billed_to_the_instant_it_stopped(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("r1", sid, T0)
    billing.tick(T0 + 30)
    billing.clock.t = T0 + 75
    billing.stop("r1")  # drained and deleted 45 s after the last look
    billing.replica("r2", sid, T0 + 80)  # a run that begins and ends between two passes
    billing.clock.t = T0 + 150
    billing.stop("r2")
    billing.replica("r3", sid, T0 + 100, state="starting")
    billing.clock.t = T0 + 110
    billing.stop("r3")  # was still starting: billed like any run, the minute minimum included
    billing.tick(T0 + 180)
    billing.tick(T0 + 240)  # the stops are used once
    assert billing.billed("r1") == (75, 75_000)
    assert billing.billed("r2") == (70, 70_000)
    assert billing.billed("r3") == (10, 60_000)
    with billing.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(billing_stops)).scalar() == 0


def test_a_stopped_or_failed_row_is_billed_to_when_it_stopped(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("r1", sid, T0)
    billing.tick(T0 + 100)
    billing.clock.t = T0 + 130
    billing.replica("r1", sid, T0, state="failed")  # updated_at = T0 + 130
    billing.tick(T0 + 300)
    assert billing.billed("r1") == (130, 130_000)


def test_a_crash_restart_starts_a_new_run(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("r1", sid, T0)
    billing.tick(T0 + 50)
    billing.replica("r1", sid, T0 + 70)  # crashed and restarted: a new started_at
    billing.tick(T0 + 100)
    assert billing.billed("r1") == (50 + 30, 60_000 + 60_000)  # two runs, each with its minimum
    billing.tick(T0 + 200)
    assert billing.billed("r1") == (50 + 130, 60_000 + 130_000)


def test_a_restarted_meter_bills_the_time_it_was_away_once(billing: Billing) -> None:
    sid = billing.service("web", 2)
    billing.replica("r1", sid, T0)
    billing.replica("r2", sid, T0 + 5)
    billing.tick(T0 + 10)
    fresh = Meter(billing.store, BillingSettings(), billing.clock)  # the reconciler's process restarted
    billing.clock.t = T0 + 500
    fresh.run_pass()
    fresh.run_pass()
    assert billing.billed("r1") == (500, 500_000)
    assert billing.billed("r2") == (495, 495_000)


def test_a_rolling_update_bills_both_revisions_while_both_run(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("old", sid, T0, revision="a")
    billing.tick(T0 + 100)
    billing.replica("new", sid, T0 + 100, state="starting", revision="b")
    billing.tick(T0 + 130)
    billing.replica("new", sid, T0 + 100, state="ready", revision="b")
    billing.replica("old", sid, T0, state="draining", revision="a")
    billing.tick(T0 + 160)
    billing.remove("old")
    billing.tick(T0 + 400)
    assert billing.billed("old") == (160, 160_000)
    assert billing.billed("new") == (300, 300_000)


def test_pending_rows_without_a_start_are_not_billed(billing: Billing) -> None:
    sid = billing.service("web", 1)
    billing.replica("r1", sid, None, state="pending")
    billing.tick(T0 + 100)
    assert billing.billed() == (0, 0)


def test_nothing_rewrites_the_ledger() -> None:
    """The ledger is append-only: no code updates or deletes its rows (corrections are new entries)."""
    root = Path(__file__).parents[2] / "arkserve"
    offenders = [str(p) for p in root.rglob("*.py") if re.search(r"(update|delete)\(\s*billing_ledger", p.read_text())]
    assert offenders == []
