"""A run moving between prepaid and pay-as-you-go on real stores: back to prepaid when its owner buys another
instance after an expiry, every renewal missed while the meter was down charged (and no pay-as-you-go beside
them), and a rolling update's new replica moved onto the prepaid instance its old one freed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from arkserve.billing import ledger, prepaid
from arkserve.billing.metering import to_micro
from arkserve.store.tables import billing_runs, prepaid_instances, replicas
from tests.billing.conftest import PRICE, Billing

T0 = 1_800_000_000.0
DAY = 86400.0


def _buy(billing: Billing, auto_renew: bool = False) -> dict[str, Any]:
    with billing.store.begin() as conn:
        return prepaid.buy(conn, billing.user_id, "t.one", PRICE, count=1, period="month", auto_renew=auto_renew,
                           now=billing.clock.t, discount=0.2, currency="CNY")


def _top_up(billing: Billing, micro: int) -> None:
    with billing.store.begin() as conn:
        ledger.add(conn, billing.user_id, "topup", micro, time=billing.clock.t)


def _usage(billing: Billing, rid: str) -> list[dict[str, Any]]:
    with billing.store.read() as conn:
        rows = ledger.entries(conn, billing.user_id, kind="usage", limit=10_000)
    return sorted((e for e in rows if e["replica"] == rid), key=lambda e: e["period_start"])


def _seconds(entries: list[dict[str, Any]], mode: str) -> int:
    return sum(e["seconds"] for e in entries if e["billing"] == mode)


def _assert_chained(entries: list[dict[str, Any]], start: float, end: float) -> None:
    """A run's entries, whatever their mode, cover it from ``start`` to ``end`` without gap or overlap."""
    chain = start
    for e in entries:
        assert e["period_start"] == chain, e
        chain = e["period_end"]
    assert int(chain - start) == int(end - start)


def _row_billing(billing: Billing, rid: str) -> str:
    with billing.store.read() as conn:
        return str(conn.execute(select(replicas.c.billing).where(replicas.c.id == rid)).scalar_one())


def test_a_replica_demoted_at_expiry_is_prepaid_again_when_its_owner_buys_another_instance(billing: Billing) -> None:
    billing.clock.t = T0
    _top_up(billing, to_micro(10_000))
    first = _buy(billing)
    sid = billing.service("web", 1)  # on_prepaid_expiry: payg (the default)
    billing.replica("p1", sid, T0, billing="prepaid")
    billing.tick(T0 + 100)
    end = float(first["ends_at"])
    billing.tick(end + 3600)  # expired an hour ago: pay-as-you-go since
    again = _buy(billing)  # the owner buys another instance of the type
    bought = billing.clock.t
    billing.tick(bought + 3600)
    billing.tick(bought + DAY)
    usage = _usage(billing, "p1")
    assert _seconds(usage, "payg") == 3600  # from the expiry to the purchase's pass, not a second more
    assert sum(-e["amount_micro"] for e in usage) == 3_600_000
    assert all(e["billing"] == "prepaid" and e["amount_micro"] == 0 for e in usage if e["period_start"] >= bought)
    end2 = float(again["ends_at"])
    billing.tick(end2 + 100)  # the second instance expires too: pay-as-you-go again, from its end
    usage = _usage(billing, "p1")
    assert {e["billing"] for e in usage} == {"payg", "prepaid"}
    assert sum(e["seconds"] for e in usage) == int(end2 + 100 - T0)
    assert _seconds(usage, "payg") in (3600 + 100, 3600 + 101)
    assert sum(-e["amount_micro"] for e in usage) == _seconds(usage, "payg") * 1000
    _assert_chained(usage, T0, end2 + 100)
    with billing.store.read() as conn:
        st = ledger.statement(conn, billing.user_id, ledger.current_month(end2 + 100))
        keys = sorted(conn.execute(select(billing_runs.c.billing, billing_runs.c.ended)).all())
    assert {ln["billing"] for ln in st["lines"]} <= {"payg", "prepaid"}
    assert keys == [("payg", True), ("payg#2", False), ("prepaid", True), ("prepaid#2", True)]  # one per stretch


@pytest.mark.parametrize("affordable", [2, 1])
def test_renewals_missed_while_the_meter_was_down_are_all_charged_and_only_the_rest_is_payg(
        billing: Billing, affordable: int) -> None:
    billing.clock.t = T0
    price = prepaid.period_price(PRICE, "month", 1, 0.2)
    batch_cost = int(40 * DAY) * 1000  # a pay-as-you-go replica that ran 40 days
    topped = price * (1 + affordable) + batch_cost + to_micro(100)  # the purchase, `affordable` renewals, g1
    _top_up(billing, topped)
    row = _buy(billing, auto_renew=True)
    sid = billing.service("web", 1)
    billing.replica("p1", sid, T0, billing="prepaid")
    billing.replica("g1", billing.service("batch", 1, billing="payg"), T0)
    billing.tick(T0 + 100)
    down_until = T0 + 70 * DAY  # the reconciler (and its meter) was down 70 days; the replica kept running
    billing.clock.t = T0 + 40 * DAY
    billing.stop("g1")  # stopped between two prepaid ends while the meter was away: billed to that instant
    billing.tick(down_until)
    billing.tick(down_until + 30)
    billing.tick(down_until + 60)
    end1 = float(row["ends_at"])
    ends = [end1, prepaid.add_months(end1, 1), prepaid.add_months(end1, 2)]
    assert ends[1] < down_until < ends[2]  # two periods ended while it was down
    with billing.store.read() as conn:
        renewals = ledger.entries(conn, billing.user_id, kind="renewal")
        after = conn.execute(select(prepaid_instances.c.status, prepaid_instances.c.ends_at)).one()
    assert len(renewals) == affordable
    usage = _usage(billing, "p1")
    assert sum(e["seconds"] for e in usage) == int(down_until + 60 - T0)
    _assert_chained(usage, T0, down_until + 60)
    if affordable == 2:
        assert tuple(after) == ("active", ends[2])
        assert _seconds(usage, "payg") == 0 and all(e["amount_micro"] == 0 for e in usage)
    else:  # only what is past the last affordable renewal is pay-as-you-go
        assert after[0] == "expired"
        assert _seconds(usage, "payg") in (int(down_until + 60 - ends[1]), int(down_until + 60 - ends[1]) + 1)
        assert sum(-e["amount_micro"] for e in usage) == _seconds(usage, "payg") * 1000
    g1 = _usage(billing, "g1")
    assert sum(e["seconds"] for e in g1) == 40 * DAY and sum(-e["amount_micro"] for e in g1) == batch_cost
    with billing.store.read() as conn:
        assert ledger.balance(conn, billing.user_id) == (topped - price * (1 + affordable) - batch_cost
                                                         - 1000 * _seconds(usage, "payg"))


def test_after_a_rolling_update_the_new_replica_moves_onto_the_freed_prepaid_instance(billing: Billing) -> None:
    billing.clock.t = T0
    _top_up(billing, to_micro(10_000))
    _buy(billing)
    sid = billing.service("web", 1)
    batch = billing.service("batch", 1, billing="payg")  # pay-as-you-go by choice: never moved onto prepaid
    billing.replica("g1", batch, T0 - 50, billing="payg")
    billing.replica("old", sid, T0, billing="prepaid", revision="a")
    billing.tick(T0 + 100)
    billing.replica("new", sid, T0 + 100, state="starting", revision="b")  # the surge: the instance is held
    billing.tick(T0 + 130)
    billing.replica("new", sid, T0 + 100, state="ready", revision="b")
    billing.replica("old", sid, T0, state="draining", billing="prepaid", revision="a")
    billing.tick(T0 + 160)
    billing.clock.t = T0 + 170
    billing.stop("old")  # drained and deleted: its prepaid instance is free
    billing.tick(T0 + 200)
    billing.tick(T0 + 400)
    new = _usage(billing, "new")
    assert _seconds(new, "payg") == 60  # from its start to where its pay-as-you-go stopped (the last pass)
    assert _seconds(new, "prepaid") == 240 and sum(e["seconds"] for e in new) == 300
    assert sum(-e["amount_micro"] for e in new) == 60_000
    _assert_chained(new, T0 + 100, T0 + 400)
    assert _row_billing(billing, "new") == "prepaid"  # placement counts it on the instance
    assert _row_billing(billing, "g1") == "payg"
    g1 = _usage(billing, "g1")
    assert _seconds(g1, "payg") == 450 and _seconds(g1, "prepaid") == 0
    assert _seconds(_usage(billing, "old"), "prepaid") == 170


def test_a_replica_placed_on_the_prepaid_instance_holds_it_before_it_runs(billing: Billing) -> None:
    """Placement put ``held`` on the owner's only prepaid instance; it is not running yet (no run to meter), so
    the meter's promotion must count it (``placed_prepaid``) and leave the pay-as-you-go run where it is, until
    the placed replica is gone."""
    billing.clock.t = T0
    _top_up(billing, to_micro(10_000))
    _buy(billing)
    sid = billing.service("web", 2)
    billing.replica("held", sid, None, state="starting", billing="prepaid", node="local", instance_type="t.one")
    billing.replica("run", sid, T0, billing="payg", node="local", instance_type="t.one")
    billing.tick(T0 + 100)
    billing.tick(T0 + 200)
    assert _row_billing(billing, "run") == "payg"
    assert _seconds(_usage(billing, "run"), "prepaid") == 0 and _seconds(_usage(billing, "run"), "payg") == 200
    billing.remove("held")  # never started (its start failed): the instance is free
    billing.tick(T0 + 300)
    billing.tick(T0 + 400)
    run = _usage(billing, "run")
    assert _row_billing(billing, "run") == "prepaid"
    assert _seconds(run, "payg") == 200 and _seconds(run, "prepaid") == 200  # prepaid from the pass that saw it free
    _assert_chained(run, T0, T0 + 400)
