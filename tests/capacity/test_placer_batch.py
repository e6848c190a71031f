"""The placer's batch (arkserve/reconciler/capacity.py, ``Placer.assign_many``): many replicas placed in one
transaction read the instance types and ask billing once per answer, not once per replica, with the same
placements, billing modes and Unschedulable reasons; a real store (SQLite and PostgreSQL) each time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from arkserve.billing import admission, prepaid
from arkserve.capacity.inventory import read_inventory
from arkserve.reconciler.batch import PassWrites
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.settings import BillingSettings
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.services import ReplicaRow, ServiceRow
from tests.capacity.fake_nvml import FakeNVML

SPEC = {"image": "img", "command": "serve", "port": 8000, "instance_type": "cpu.small"}


@contextmanager
def reads_of(store: Store) -> Iterator[Counter[str]]:
    """How many statements read each of the tables named below while the block runs."""
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = " ".join(statement.split())
        for table in ("instance_types", "prepaid_instances", "users", "billing_ledger"):
            if words.startswith(f"SELECT {table}.") or f"FROM {table} " in words + " ":
                seen[table] += 1

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def _service(store: Store, prepaid_count: int, **spec: Any) -> ServiceRow:
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "owner", "h", "user").id
        if prepaid_count:
            prepaid.buy(conn, owner, "cpu.small", 0.0, count=prepaid_count, period="month", auto_renew=False,
                        now=time.time(), discount=0.0, currency="CNY")
        return service_store.create(conn, "svc", owner, {**SPEC, **spec}, 0, None)


def _placer(store: Store) -> Placer:
    return Placer(store, "local", ReconcilerConfig(cpu_overcommit=0, memory_overcommit=0),  # 0: CPUs never short
                  inventory=lambda: read_inventory("host-a", FakeNVML([])))


def _new(svc: ServiceRow, n: int) -> list[ReplicaRow]:
    return [ReplicaRow(id=f"r{i:07d}", service_id=svc.id, revision="v1", state="pending") for i in range(n)]


def test_a_batch_reads_types_and_prepaid_counts_once_not_per_replica(store: Store) -> None:
    svc = _service(store, prepaid_count=2)
    placer, reps = _placer(store), _new(svc, 20)
    placer.record()
    with reads_of(store) as reads:
        got = placer.assign_many([(svc, r) for r in reps])
    assert got == [""] * 20
    assert [r.billing for r in reps] == ["prepaid"] * 2 + ["payg"] * 18  # each counts the ones before it
    assert {(r.node, r.instance_type) for r in reps} == {("host-a", "cpu.small")}
    # one read of the types; prepaid counts: the reservations plus billing asked at 0, 1 and 2 on prepaid
    # (per replica it was 21 reads of the type and 21 of the prepaid counts)
    assert reads["instance_types"] == 1, reads
    assert reads["prepaid_instances"] <= 4, reads
    with store.read() as conn:
        saved = {r.id: (r.node, r.billing) for r in service_store.list_replicas(conn, svc.id)}
    assert saved == {r.id: ("host-a", r.billing) for r in reps}


def test_a_refusal_from_billing_is_each_replicas_unschedulable_reason(store: Store) -> None:
    svc = _service(store, prepaid_count=1, billing="prepaid")
    placer, reps = _placer(store), _new(svc, 4)
    with reads_of(store) as reads:
        got = placer.assign_many([(svc, r) for r in reps])
    why = "no free prepaid cpu.small instance (1 of 1 in use); buy one, or let the service use pay-as-you-go " \
          "(billing: auto)"
    assert got == ["", why, why, why]
    assert [(r.state, r.node, r.last_error) for r in reps] == [("pending", "host-a", "")] + \
        [("pending", "", why)] * 3
    assert reads["prepaid_instances"] <= 3, reads


def test_a_short_balance_is_read_once_and_keeps_each_replica_pending_in_billings_words(store: Store) -> None:
    svc = _service(store, prepaid_count=0)  # the owner's balance is 0; cpu.small costs 0.05 an hour
    placer, reps = _placer(store), _new(svc, 5)
    admission.configure(BillingSettings(enforce=True))
    try:
        with reads_of(store) as reads:
            got = placer.assign_many([(svc, r) for r in reps])
    finally:
        admission.configure(BillingSettings())
    why = "insufficient balance: 0.00 CNY (pay-as-you-go needs more than 0.00); top up, or use a prepaid instance"
    assert got == [why] * 5
    assert [(r.state, r.node, r.last_error) for r in reps] == [("pending", "", why)] * 5
    assert reads["billing_ledger"] == 1 and reads["instance_types"] == 2, reads  # the types; the price once


def test_with_the_pass_writes_the_new_rows_are_written_once_placed_in_its_transaction(store: Store) -> None:
    svc = _service(store, prepaid_count=0)
    placer, reps, writes = _placer(store), _new(svc, 3), PassWrites(store)
    placer.record()
    for rep in reps:
        writes.save(rep)
    writes.event("svc", "note", "in the same transaction")
    inserted: list[dict[str, Any]] = []
    commits = [0]

    def insert(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if statement.lstrip().startswith("INSERT INTO replicas"):
            inserted.extend(context.compiled_parameters)

    event.listen(store.engine, "before_cursor_execute", insert)
    event.listen(store.engine, "commit", lambda _c: commits.__setitem__(0, commits[0] + 1))
    got = placer.assign_many([(svc, r) for r in reps], writes)
    event.remove(store.engine, "before_cursor_execute", insert)
    assert got == [""] * 3 and len(writes) == 0
    assert commits[0] == 1
    assert sorted((p["id"], p["node"], p["state"]) for p in inserted) == [(r.id, "host-a", "pending") for r in reps]
    with store.read() as conn:
        assert {r.node for r in service_store.list_replicas(conn, svc.id)} == {"host-a"}
