"""Prepaid instances on real stores: bought from the balance (refused when short), they hold for their owner
(billing_mode / reserved), cost nothing per second, and expire to pay-as-you-go or to 0, or renew, with events."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from arkserve.billing import admission, ledger, prepaid
from arkserve.billing.metering import to_micro
from arkserve.errors import TemporaryError
from arkserve.settings import BillingSettings
from arkserve.store import events as event_store
from arkserve.store.tables import prepaid_instances, services
from tests.billing.conftest import Billing, add_user

DAY = 86400.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here (the purchase's SQL runs on PostgreSQL in tests/api/test_billing.py)."""
    return f"sqlite:///{tmp_path}/arkserve.db"


def _buy(billing: Billing, count: int = 1, auto_renew: bool = False) -> dict[str, Any]:
    with billing.store.begin() as conn:
        return prepaid.buy(conn, billing.user_id, "t.one", 3.6, count=count, period="month", auto_renew=auto_renew,
                           now=billing.clock.t, discount=0.2, currency="CNY")


def _top_up(billing: Billing, amount: float) -> None:
    with billing.store.begin() as conn:
        ledger.add(conn, billing.user_id, "topup", to_micro(amount), time=billing.clock.t)


def test_a_purchase_is_paid_from_the_balance_and_refused_when_short(billing: Billing) -> None:
    with pytest.raises(prepaid.InsufficientBalance) as short:
        _buy(billing)
    assert short.value.status == 402 and "0.00 CNY" in short.value.message
    _top_up(billing, 3000)
    row = _buy(billing, count=1)
    assert row["price_micro"] == to_micro(3.6 * 720 * 0.8)  # 2073.60
    with billing.store.read() as conn:
        assert ledger.balance(conn, billing.user_id) == to_micro(3000 - 2073.6)
        assert prepaid.add_months(0.0, 1) == 31 * DAY  # 1970-01-01 -> 1970-02-01
        assert prepaid.add_months(prepaid.add_months(0.0, 1) - DAY * 3, 1) == prepaid.add_months(0.0, 2) - DAY


def test_prepaid_holds_for_its_owner_and_costs_nothing_per_second(billing: Billing) -> None:
    billing.clock.t = time.time()
    _top_up(billing, 3000)
    _buy(billing, count=1)
    admission.configure(BillingSettings(enforce=True))
    bob = add_user(billing.store, "bob")
    spec = {"instance_type": "t.one"}
    with billing.store.read() as conn:
        assert admission.reserved(conn, time.time()) == {billing.user_id: {"t.one": 1}}
        assert admission.billing_mode(conn, billing.user_id, "t.one", spec, 0) == "prepaid"
        assert admission.billing_mode(conn, billing.user_id, "t.one", {**spec, "billing": "payg"}, 0) == "payg"
        with pytest.raises(TemporaryError) as busy:
            admission.billing_mode(conn, billing.user_id, "t.one", {**spec, "billing": "prepaid"}, 1)
        assert busy.value.code == "NoFreePrepaidInstance"
        with pytest.raises(TemporaryError) as broke:  # bob has no balance: his pay-as-you-go replica waits
            admission.billing_mode(conn, bob, "t.one", spec, 0)
        assert broke.value.code == "InsufficientBalance" and "0.00 CNY" in broke.value.message
    admission.configure(BillingSettings())
    sid = billing.service("web", 2)
    t0 = billing.clock.t
    billing.replica("p1", sid, t0, billing="prepaid")
    billing.replica("g1", sid, t0, billing="payg")
    billing.tick(t0 + 100)
    assert billing.billed("p1") == (100, 0)
    assert billing.billed("g1") == (100, 100_000)


@pytest.mark.parametrize("on_expiry", ["payg", "stop"])
def test_expiry_moves_the_service_to_payg_or_to_zero(billing: Billing, on_expiry: str) -> None:
    billing.clock.t = time.time()
    _top_up(billing, 3000)
    row = _buy(billing)
    sid = billing.service("web", 1, on_prepaid_expiry=on_expiry)
    t0 = billing.clock.t
    billing.replica("p1", sid, t0, billing="prepaid")
    billing.tick(t0 + 1000)
    end = float(row["ends_at"])
    billing.tick(end + 50)
    with billing.store.read() as conn:
        state = conn.execute(select(prepaid_instances.c.status)).scalar_one()
        replicas = conn.execute(select(services.c.replicas).where(services.c.id == sid)).scalar_one()
        events = [e["message"] for e in event_store.list_events(conn, "web")]
    assert state == "expired"
    if on_expiry == "stop":
        assert replicas == 0 and any("scaled 1 -> 0 (on_prepaid_expiry: stop)" in m for m in events), events
    else:
        assert replicas == 1 and any("continue as pay-as-you-go" in m for m in events), events
    billing.tick(end + 110)  # from the expiry on, the replica is billed pay-as-you-go
    assert billing.billed("p1")[0] == int(end + 110 - t0)
    with billing.store.read() as conn:
        usage = ledger.entries(conn, billing.user_id, kind="usage")
    payg_s = sum(e["seconds"] for e in usage if e["billing"] == "payg")
    assert payg_s in (110, 111)  # from the instant it ended (whole seconds from the run's start)
    assert sum(-e["amount_micro"] for e in usage) == payg_s * 1000


def test_auto_renew_charges_the_next_period(billing: Billing) -> None:
    billing.clock.t = time.time()
    _top_up(billing, 5000)
    row = _buy(billing, auto_renew=True)
    billing.tick(float(row["ends_at"]) + 1)
    with billing.store.read() as conn:
        after = prepaid.get(conn, int(row["id"]))
        assert after["status"] == "active" and after["ends_at"] > row["ends_at"]
        assert ledger.balance(conn, billing.user_id) == to_micro(5000) - 2 * int(row["price_micro"])
        billing.tick(float(after["ends_at"]) + 1)  # the balance is short now: it expires
    with billing.store.read() as conn:
        assert prepaid.get(conn, int(row["id"]))["status"] == "expired"


def test_an_autoscaled_service_stopped_at_expiry_stays_stopped(billing: Billing) -> None:
    """on_prepaid_expiry: stop turns the autoscaler off too: a request that arrives later does not wake it."""
    from arkserve.reconciler.autoscaler import Autoscaler
    from arkserve.store import load as load_store

    billing.clock.t = time.time()
    _top_up(billing, 3000)
    row = _buy(billing)
    sid = billing.service("web", 1, on_prepaid_expiry="stop", autoscale={"min": 0, "max": 3})
    billing.replica("p1", sid, billing.clock.t, billing="prepaid")
    billing.tick(float(row["ends_at"]) + 50)
    with billing.store.begin() as conn:
        assert load_store.wake(conn, "gw:1", "web", 2)  # a request waits at 0 replicas
    Autoscaler(billing.store).step()
    with billing.store.read() as conn:
        replicas, spec = conn.execute(select(services.c.replicas, services.c.spec).where(services.c.id == sid)).one()
        events = [e["message"] for e in event_store.list_events(conn, "web")]
    assert replicas == 0 and spec.get("autoscale") is None, events
    assert any("autoscaling turned off" in m for m in events), events
