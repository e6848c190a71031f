"""Work follows change: among thousands of settled services, the reconciler acts on the one that changed at
once and leaves the others to the slow resync."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from arkserve.reconciler import loop
from arkserve.store import services as service_store
from arkserve.store.tables import services
from tests.reconciler.conftest import FAST, Cluster

MANY = 5000


def _bulk_create(cluster: Cluster, n: int) -> None:
    """``n`` services of 0 replicas written straight into the store, settled (as the reconciler leaves them)."""
    spec, t = cluster.spec(), time.time()
    with cluster.store.begin() as conn:
        for start in range(0, n, 1000):
            conn.execute(insert(services), [
                {"name": f"many-{i:05d}", "owner_id": cluster.owner_id, "spec": spec, "replicas": 0,
                 "generation": 1, "gateway_port": None, "status": "stopped", "reason": "ScaledToZero",
                 "message": "0 replicas desired", "deleting": False, "created_at": t, "updated_at": t}
                for i in range(start, min(n, start + 1000))])
        service_store.touch(conn, *service_store.all_ids(conn))


def _unsettled(cluster: Cluster) -> int:
    with cluster.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(services)
                                .where(services.c.status != "stopped")).scalar_one())


def test_one_change_among_5000_services_is_acted_on_within_a_second(cluster: Cluster,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    examined: list[str] = []  # every service a pass looks at goes through loop.idle (then maybe a worker's tick)
    idle = loop.idle

    def counting(svc: service_store.ServiceRow, *args: Any) -> bool:
        examined.append(svc.name)
        return idle(svc, *args)

    monkeypatch.setattr(loop, "idle", counting)
    cluster.stop()
    cluster.config = replace(FAST, resync_s=600.0)  # the resync's slices out of the way: 5000 per 10 min
    cluster.start()
    _bulk_create(cluster, MANY)
    rec = cluster.reconciler
    assert rec is not None
    cluster.wait("every service looked at once", lambda: len(set(examined)) >= MANY, timeout=40)
    cluster.wait("that first pass over", lambda: not rec.inflight and not rec.carry, timeout=10)
    assert _unsettled(cluster) == 0  # nothing to write: they were created settled

    examined.clear()
    time.sleep(2.0)
    # nothing changed: only the resync's slice (about 17 in 2 s), never a pass over all of them
    assert len(examined) < 60, len(examined)

    cluster.scale("many-04321", 1)
    t0 = time.monotonic()
    cluster.wait("a replica row for the scaled service", lambda: bool(cluster.replicas("many-04321")), timeout=5)
    assert time.monotonic() - t0 < 1.0
    cluster.wait("ready", lambda: bool(cluster.ready("many-04321")), timeout=20)
    cluster.scale("many-04321", 0)
    cluster.wait("gone", lambda: not cluster.replicas("many-04321"), timeout=20)


def test_a_deleted_service_is_removed_and_forgotten(cluster: Cluster) -> None:
    cluster.create("brief", 1)
    cluster.wait("ready", lambda: bool(cluster.ready("brief")))
    cluster.delete("brief")
    cluster.wait("removed", lambda: cluster.service("brief") is None)
    rec = cluster.reconciler
    assert rec is not None
    cluster.wait("its worker forgotten",
                 lambda: not rec.workers and not rec.schedule.busy and not rec.schedule.probe_at)
