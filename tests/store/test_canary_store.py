"""A canary in the store (on SQLite and PostgreSQL): its columns survive a round trip, the gateway's routes carry
each upstream's revision and the split in a full load and in a load in O(changed) alike, promote and drop."""

from __future__ import annotations

import time

from arkserve.auth.vault import MasterKey
from arkserve.domain.services import revision
from arkserve.store import canary as canary_store
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store
from arkserve.store.routing import SnapshotLoader, load_snapshot
from arkserve.store.services import ReplicaRow

SPEC = {"image": "img", "command": "serve", "port": 8000, "env": {"VERSION": "1"}}
CANARY = {**SPEC, "env": {"VERSION": "2"}}


def test_a_canary_reaches_the_routes_and_promote_and_drop_clear_it(store: Store) -> None:
    master = MasterKey.generate()
    stable, canary = revision(SPEC), revision(CANARY)
    with store.begin() as conn:
        owner = user_store.create(conn, "owner", "h", "user").id
        svc = service_store.create(conn, "birds", owner, SPEC, 2, None)
        for rid, rev, port in (("s1", stable, 40001), ("s2", stable, 40002), ("c1", canary, 40003)):
            service_store.save_replica(conn, ReplicaRow(rid, svc.id, rev, "ready", "127.0.0.1", port,
                                                        started_at=time.time()), routing_changed=True)
    loader = SnapshotLoader(master)
    with store.read() as conn:
        first = loader.load(conn)
    assert first.services["birds"].canary == "" and first.services["birds"].canary_weight == 0

    with store.begin() as conn:
        canary_store.set_canary(conn, service_store.get(conn, "birds"), CANARY, 10)
    with store.read() as conn:
        svc = service_store.get(conn, "birds")
        delta = loader.load(conn)
        full = load_snapshot(conn, master)
    assert svc.canary_spec == CANARY and svc.canary_weight == 10 and svc.spec == SPEC
    assert canary_store.desired(svc) is not None and canary_store.desired(svc).replicas == 1  # type: ignore[union-attr]
    assert delta.changed == {"birds"} and dict(delta.services) == dict(full.services)
    route = delta.services["birds"]
    assert (route.canary, route.canary_weight) == (canary, 10)
    assert {u.replica: u.revision for u in route.upstreams} == {"s1": stable, "s2": stable, "c1": canary}
    with store.read() as conn:
        rows = service_store.list_replicas(conn, svc.id)
    assert [[r.id for r in part] for part in canary_store.split_rows(svc, rows)] == [["s1", "s2"], ["c1"]]
    assert canary_store.as_revision(svc, canary).spec == CANARY and canary_store.as_revision(svc, stable) is svc

    with store.begin() as conn:
        canary_store.promote(conn, service_store.get(conn, "birds"))
        event_store.insert_requests(conn, [{"time": 1.0, "service": "birds", "replica": "c1", "method": "GET",
                                            "path": "/", "status": 200, "latency_ms": 1.0, "bytes_in": 0,
                                            "bytes_out": 0, "access_key": "", "client": "", "request_id": "x",
                                            "revision": canary},
                                           {"time": 2.0, "service": "birds", "replica": "s1", "method": "GET",
                                            "path": "/", "status": 200, "latency_ms": 1.0, "bytes_in": 0,
                                            "bytes_out": 0, "access_key": "", "client": "", "request_id": "y"}])
    with store.read() as conn:
        svc = service_store.get(conn, "birds")
        delta = loader.load(conn)
        log = event_store.list_requests(conn, "birds")
    assert svc.spec == CANARY and svc.canary_spec is None and svc.canary_weight == 0 and svc.generation == 2
    assert delta.services["birds"].canary == "" and delta.services["birds"].canary_weight == 0
    assert [(r["replica"], r["revision"]) for r in log] == [("s1", ""), ("c1", canary)]  # a record without one: ""

    with store.begin() as conn:
        canary_store.set_canary(conn, service_store.get(conn, "birds"), SPEC, 30)
        canary_store.drop(conn, service_store.get(conn, "birds"))
    with store.read() as conn:
        svc = service_store.get(conn, "birds")
    assert svc.spec == CANARY and svc.canary_spec is None and canary_store.desired(svc) is None
