"""Batched store writes of the reconciler (arkserve/reconciler/batch.py): a pass's many replicas in a few
transactions, the drain threads' deletes in group commits, many rows saved at once; a real store each time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, event

from arkserve.reconciler.batch import GroupCommit, PassWrites
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, version
from arkserve.store.services import ReplicaRow
from tests.reconciler.conftest import Cluster, running_cluster
from tests.runtimes.fake import FakeRuntime

SPEC = {"image": "img", "command": "serve", "port": 8000}


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, lambda _: FakeRuntime(clock=time.time)) as c:
        yield c


def _commits(store: Store) -> list[int]:
    count = [0]
    event.listen(store.engine, "commit", lambda _conn: count.__setitem__(0, count[0] + 1))
    return count


def test_a_scale_to_many_commits_per_batch_not_per_replica(fake_cluster: Cluster) -> None:
    c = fake_cluster
    c.create("many", 0)
    c.wait("scaled to zero", lambda: (c.service("many") or c.all_services()[0]).status == "stopped")
    commits = _commits(c.store)
    c.scale("many", 64)
    c.wait("64 started", lambda: sum(1 for r in c.replicas("many") if r.state == "starting") == 64)
    # per replica it was 4 (pending row, placement, started row, started event): 256 and more
    assert commits[0] <= 24, commits[0]
    assert c.events("many").count("started") == 64
    assert all(r.node for r in c.replicas("many"))  # each placed before it started
    c.scale("many", 0)
    c.wait("all gone", lambda: not c.replicas("many"), timeout=60)
    kinds = c.events("many")
    assert kinds.count("draining") == 64 and kinds.count("stopped") == 64
    messages = [m for k in ("draining", "stopped") for m in c.event_messages("many", k)]
    for rid in {m.split()[1] for m in messages}:  # each replica left routing before it was stopped
        assert messages.index(f"replica {rid} leaves routing") < messages.index(f"replica {rid} stopped")


def test_a_scale_to_many_reads_types_and_owner_per_batch_and_writes_each_row_placed(fake_cluster: Cluster) -> None:
    c = fake_cluster
    c.create("many", 0)
    c.wait("scaled to zero", lambda: (c.service("many") or c.all_services()[0]).status == "stopped")
    reads: dict[str, int] = {"instance_types": 0, "users": 0}
    inserted: list[dict[str, object]] = []

    def look(_conn: object, _cursor: object, statement: str, _params: object, context: object, _many: bool) -> None:
        words = " ".join(statement.split())
        for table in reads:
            reads[table] += words.startswith(f"SELECT {table}.")
        if words.startswith("INSERT INTO replicas"):
            inserted.extend(context.compiled_parameters)  # type: ignore[attr-defined]

    event.listen(c.store.engine, "before_cursor_execute", look)
    try:
        c.scale("many", 64)
        c.wait("64 started", lambda: sum(1 for r in c.replicas("many") if r.state == "starting") == 64)
    finally:
        event.remove(c.store.engine, "before_cursor_execute", look)
    # two batches of 32: the placer's read of the types and the specs' read of types and owner, per batch (per
    # replica it was 128 reads of the type and 64 of the owner)
    assert reads["instance_types"] <= 6 and reads["users"] <= 3, reads
    # each new row is first written placed, with its placement, in one transaction (not pending, then placed)
    assert len(inserted) == 64 and all(row["node"] and row["state"] == "pending" for row in inserted), inserted[:2]
    assert c.events("many").count("started") == 64


def _owner_and_service(store: Store) -> int:
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        return service_store.create(conn, "svc", owner, SPEC, 0, None).id


def test_save_replicas_inserts_and_updates_with_one_touch(store: Store) -> None:
    sid = _owner_and_service(store)
    reps = [ReplicaRow(id=f"r{i}", service_id=sid, revision="v1", state="pending") for i in range(3)]
    with store.begin() as conn:
        service_store.save_replicas(conn, reps[:1], routing_changed=False)
        routing, seq = version(conn), service_store.feed_versions(conn)[1]
    reps[0].state, reps[1].state = "starting", "starting"
    with store.begin() as conn:
        service_store.save_replicas(conn, reps, routing_changed=True)
    with store.read() as conn:
        got = {r.id: r.state for r in service_store.list_replicas(conn, sid)}
        assert version(conn) == routing + 1 and service_store.feed_versions(conn)[1] == seq + 1
        assert [s.name for s in service_store.changed_since(conn, seq)] == ["svc"]
    assert got == {"r0": "starting", "r1": "starting", "r2": "pending"}


def test_pass_writes_commit_together_and_call_back_after(store: Store) -> None:
    sid = _owner_and_service(store)
    writes, seen = PassWrites(store), []
    rep = ReplicaRow(id="r1", service_id=sid, revision="v1", state="ready")
    writes.save(rep, routing=True)
    writes.event("svc", "ready", "replica r1 is ready", "r1")

    def committed(routed: int) -> None:  # called after the commit: another connection sees the row
        with store.read() as conn:
            seen.append((routed, [r.state for r in service_store.list_replicas(conn, sid)]))
    writes.on_commit(committed)
    with store.read() as conn:
        before = version(conn)
        assert service_store.list_replicas(conn, sid) == []  # nothing written before the flush
    assert seen == []
    routed = writes.flush()
    assert seen == [(routed, ["ready"])] and routed == before + 1 and len(writes) == 0
    with store.read() as conn:
        assert [r.state for r in service_store.list_replicas(conn, sid)] == ["ready"]
        assert [e["kind"] for e in event_store.list_events(conn, "svc")] == ["ready"]
    assert writes.flush() == 0  # nothing left: no transaction


def test_group_commit_writes_each_callers_write_once_and_raises_a_failure_to_its_group(store: Store) -> None:
    _owner_and_service(store)
    group, errors = GroupCommit(store), []

    def write(i: int) -> None:
        def one(conn: Connection) -> None:
            if i == 7:
                time.sleep(0.05)  # the others queue up behind this group meanwhile
            event_store.record(conn, "svc", "stopped", f"replica r{i} stopped", f"r{i}")
        try:
            group.run(one)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a caller still waits for its commit"
    assert errors == []
    with store.read() as conn:
        got = sorted(e["replica"] for e in event_store.list_events(conn, "svc"))
    assert got == sorted(f"r{i}" for i in range(20))

    def bad(conn: Connection) -> None:
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        group.run(bad)
    group.run(lambda conn: event_store.record(conn, "svc", "stopped", "after a failure", "r99"))  # not stuck
