"""Prepaid reservations with several hosts: two reconcilers' real ``Placer``s (hosts h1 and h2, 4 CPUs each,
``cpu_overcommit=1``) on one real store (SQLite and PostgreSQL). A reservation is counted over all hosts
(docs/capacity.md): the free capacity of every host counts toward it, and an instance in use on one host
reserves nothing on the other. Before, each placer weighed the whole reservation against its own host alone,
so one user's prepaid ``cpu.large`` kept every other user off every host."""

from __future__ import annotations

import time
from functools import partial
from itertools import count

from arkserve.billing import prepaid
from arkserve.capacity.inventory import HostInventory
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.services import ReplicaRow, ServiceRow

SPEC = {"image": "img", "command": "serve", "port": 8000}
RESERVED = "the free capacity is reserved for other users' prepaid instances (4 CPUs reserved and not in use)"


class TwoHosts:
    """alice holds one prepaid cpu.large (4 CPUs); bob runs cpu.small (1 CPU) pay-as-you-go."""

    def __init__(self, store: Store) -> None:
        self.store, self.ids = store, count()
        with store.begin() as conn:
            instance_types.seed(conn, [])
            alice = user_store.create(conn, "alice", "h", "user").id
            bob = user_store.create(conn, "bob", "h", "user").id
            prepaid.buy(conn, alice, "cpu.large", 0.0, count=1, period="month", auto_renew=False, now=time.time(),
                        discount=0.0, currency="CNY")
            self.alice = service_store.create(conn, "a", alice, {**SPEC, "instance_type": "cpu.large"}, 0, None)
            self.bob = service_store.create(conn, "b", bob, {**SPEC, "instance_type": "cpu.small"}, 0, None)
        config = ReconcilerConfig(cpu_overcommit=1, memory_overcommit=1)
        self.placers = {h: Placer(store, "local", config, inventory=partial(HostInventory, h, 4, 65536))
                        for h in ("h1", "h2")}
        for p in self.placers.values():
            p.record()

    def place(self, host: str, svc: ServiceRow) -> str:
        """"placed <billing>" or the refusal."""
        rep = ReplicaRow(id=f"r{next(self.ids):07d}", service_id=svc.id, revision="v1", state="pending")
        why = self.placers[host].assign(svc, rep)
        return why or f"placed {rep.billing} on {rep.node}"


def test_a_reservation_not_in_use_is_counted_over_all_hosts(store: Store) -> None:
    c = TwoHosts(store)
    # 8 CPUs free in all, 4 reserved: bob may take 4 of them, anywhere (before: refused on both hosts)
    assert [c.place("h1", c.bob) for _ in range(4)] == ["placed payg on h1"] * 4
    # the 4 left (all on h2) are alice's: honoured over both hosts
    assert c.place("h2", c.bob) == RESERVED
    assert c.place("h2", c.alice) == "placed prepaid on h2"


def test_an_instance_in_use_on_one_host_reserves_nothing_on_the_other(store: Store) -> None:
    c = TwoHosts(store)
    assert c.place("h2", c.alice) == "placed prepaid on h2"
    # alice's reservation is in use on h2: h1's 4 CPUs are bob's to take (before: refused, "not in use")
    assert [c.place("h1", c.bob) for _ in range(4)] == ["placed payg on h1"] * 4
    assert c.place("h1", c.bob) == "needs 1 CPU, 0 of 4 free"
