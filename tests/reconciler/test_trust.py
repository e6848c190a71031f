"""Which replicas the local runtime may run unconfined: only admins' (where it cannot sandbox), never a user's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from arkserve.reconciler.worker import ServiceWorker
from arkserve.store import services as service_store
from arkserve.store import users as user_store

from .conftest import Cluster


def test_only_an_admins_replica_is_trusted(cluster: Cluster) -> None:
    with cluster.store.begin() as conn:
        boss = user_store.create(conn, "boss", "h", "admin").id
        service_store.create(conn, "mine", boss, cluster.spec(), 0, 20002)
    cluster.create("theirs", 0)  # the cluster's owner is an ordinary user
    with ThreadPoolExecutor(1) as stopper:
        worker = ServiceWorker(cluster.store, cluster.runtime, cluster.config, cluster.data_dir, stopper)
        with cluster.store.read() as conn:
            mine, theirs = service_store.get(conn, "mine"), service_store.get(conn, "theirs")
        assert worker.specs.build(mine, "r0000a1").trusted is True
        assert worker.specs.build(theirs, "r0000a1").trusted is False
