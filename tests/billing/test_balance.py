"""The balance rule in the meter loop (controllable clock, real stores): a user at the overdraft limit with running
pay-as-you-go replicas gets an event, then after the grace their services are scaled to 0 (never deleted); a
top-up within the grace ends it; prepaid replicas and enforcement off are left alone."""

from __future__ import annotations

from sqlalchemy import select

from arkserve.billing import accounts, ledger
from arkserve.billing.meter import Meter
from arkserve.billing.metering import to_micro
from arkserve.settings import BillingSettings
from arkserve.store import events as event_store
from arkserve.store.tables import services
from tests.billing.conftest import Billing

T0 = 1_800_000_000.0


def _replicas(billing: Billing, sid: int) -> int:
    with billing.store.read() as conn:
        return int(conn.execute(select(services.c.replicas).where(services.c.id == sid)).scalar_one())


def _events(billing: Billing, name: str) -> list[str]:
    with billing.store.read() as conn:
        return [e["message"] for e in event_store.list_events(conn, name)]


def test_grace_then_scaled_to_zero_and_a_top_up_ends_the_grace(billing: Billing) -> None:
    web, spare = billing.service("web", 2), billing.service("spare", 1)
    with billing.store.begin() as conn:
        ledger.add(conn, billing.user_id, "topup", to_micro(0.5), time=T0)
    billing.replica("w1", web, T0)
    billing.replica("w2", web, T0)
    billing.replica("s1", spare, T0, billing="prepaid")  # on a prepaid instance (none active: billed payg)
    billing.tick(T0 + 100)  # 3 x 100 s x 1000 = 0.30 spent: still above 0
    assert not any("insufficient" in m for m in _events(billing, "web"))
    billing.tick(T0 + 200)  # 0.60 spent: at -0.10, the grace starts
    assert any("scaled to 0 in 600 s unless topped up" in m for m in _events(billing, "web"))
    billing.tick(T0 + 700)
    assert _replicas(billing, web) == 2  # still within the grace
    with billing.store.begin() as conn:
        ledger.add(conn, billing.user_id, "topup", to_micro(10), time=T0 + 700)
    billing.tick(T0 + 850)
    with billing.store.read() as conn:
        assert accounts.get(conn, billing.user_id)["low_since"] is None
    with billing.store.begin() as conn:  # spent again, well below the limit
        ledger.add(conn, billing.user_id, "adjustment", -to_micro(20), time=T0 + 850, note="test")
    billing.tick(T0 + 900)
    billing.tick(T0 + 1499)
    assert _replicas(billing, web) == 2
    billing.tick(T0 + 1500)
    assert _replicas(billing, web) == 0 and _replicas(billing, spare) == 0
    assert any("after the 600 s grace: scaled 2 -> 0 (nothing deleted)" in m for m in _events(billing, "web"))
    billing.remove("w1")
    billing.remove("w2")
    billing.remove("s1")
    billing.tick(T0 + 1510)  # no pay-as-you-go left running: the grace is over, a later one starts afresh
    with billing.store.read() as conn:
        assert accounts.get(conn, billing.user_id)["low_since"] is None


def test_nothing_is_stopped_when_balances_are_not_enforced(billing: Billing) -> None:
    web = billing.service("web", 1)
    billing.replica("w1", web, T0)
    relaxed = Meter(billing.store, BillingSettings(enforce=False), billing.clock)
    for t in (T0 + 100, T0 + 5000):
        billing.clock.t = t
        relaxed.run_pass()
    assert _replicas(billing, web) == 1 and billing.billed() == (5000, 5_000_000)
