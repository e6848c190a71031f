"""A store with one user, one priced instance type and helpers to write replica rows the way the reconciler does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update

from arkserve.billing.meter import Meter
from arkserve.billing.metering import amount_for
from arkserve.settings import BillingSettings
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.tables import billing_ledger, billing_runs, instance_types, replicas, services

PRICE = 3.6  # per hour: exactly 1000 micro-units a second


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Billing:
    store: Store
    clock: Clock
    user_id: int
    meter: Meter

    def service(self, name: str, replica_count: int = 1, **spec: Any) -> int:
        with self.store.begin() as conn:
            spec = {"image": "/usr/bin", "port": 8000, "command": "x", "instance_type": "t.one", **spec}
            res = conn.execute(insert(services).values(
                name=name, owner_id=self.user_id, spec=spec, replicas=replica_count, generation=1, status="ready",
                reason="", message="", deleting=False, created_at=self.clock.t, updated_at=self.clock.t))
            key = res.inserted_primary_key
            assert key is not None
            return int(key[0])

    def replica(self, rid: str, service_id: int, started_at: float | None, state: str = "ready",
                **extra: Any) -> None:
        with self.store.begin() as conn:
            values = {"service_id": service_id, "revision": "r1", "state": state, "started_at": started_at,
                      "updated_at": self.clock.t, **extra}
            if conn.execute(update(replicas).where(replicas.c.id == rid).values(**values)).rowcount == 0:
                conn.execute(insert(replicas).values(id=rid, **values))

    def stop(self, rid: str) -> None:
        """Delete the row the way the reconciler does after stopping it (``delete_replica``), now."""
        with self.store.begin() as conn:
            service_store.delete_replica(conn, rid, stopped_at=self.clock.t)

    def remove(self, rid: str) -> None:
        with self.store.begin() as conn:
            conn.execute(delete(replicas).where(replicas.c.id == rid))

    def tick(self, t: float) -> None:
        self.clock.t = t
        self.meter.run_pass()

    def billed(self, rid: str | None = None) -> tuple[int, int]:
        """(seconds, amount in micro-units, positive) of the usage entries (of one replica)."""
        q = select(func.coalesce(func.sum(billing_ledger.c.seconds), 0),
                   func.coalesce(func.sum(billing_ledger.c.amount_micro), 0)).where(billing_ledger.c.kind == "usage")
        if rid is not None:
            q = q.where(billing_ledger.c.replica == rid)
        with self.store.read() as conn:
            seconds, amount = conn.execute(q).one()
        return int(seconds), -int(amount)


def add_user(store: Store, name: str) -> int:
    with store.begin() as conn:
        return user_store.create(conn, name, "x", "user").id


@pytest.fixture
def billing(store: Store) -> Iterator[Billing]:
    with store.begin() as conn:
        conn.execute(insert(instance_types).values(name="t.one", cpus=1.0, memory_mb=512, gpus=0, gpu_model="",
                                                   price_per_hour=PRICE, billing="payg", description=""))
    clock = Clock(1_800_000_000.0)
    yield Billing(store, clock, add_user(store, "alice"), Meter(store, BillingSettings(enforce=True), clock))


def assert_chained(store: Store, price_micro: int) -> list[dict[str, Any]]:
    """Every run segment's ledger entries chain without gap or overlap from its start to what it covers, and add
    up to exactly its cost at ``price_micro`` per hour; returns the segments."""
    with store.read() as conn:
        segments = [dict(r._mapping) for r in conn.execute(select(billing_runs))]
        rows = [dict(r._mapping) for r in conn.execute(select(billing_ledger).where(billing_ledger.c.kind == "usage")
                                                       .order_by(billing_ledger.c.period_start))]
    assert segments and rows
    for seg in segments:
        mine = [e for e in rows if e["replica"] == seg["replica_id"] and seg["from_at"] <= e["period_start"]
                and e["period_end"] <= seg["from_at"] + seg["seconds"]]
        chain = seg["from_at"]
        for e in mine:  # contiguous: each entry starts exactly where the one before ended
            assert e["period_start"] == chain, (seg, e)
            assert e["seconds"] == round(e["period_end"] - e["period_start"])
            chain = e["period_end"]
        assert chain == seg["from_at"] + seg["seconds"]
        assert sum(e["seconds"] for e in mine) == seg["seconds"]
        assert -sum(e["amount_micro"] for e in mine) == seg["amount_micro"] == amount_for(seg["seconds"], price_micro)
    assert sum(e["seconds"] for e in rows) == sum(s["seconds"] for s in segments)  # no entry outside a segment
    return segments
