"""A real reconciler over a real store and local replicas, with a gateway worker played through the store rows a
real one writes (its ack of a snapshot without the replica, and its load report naming the requests in flight per
replica, store/load.py): a draining replica is stopped only once no worker reports a request on it (past the old
``drain_timeout_s`` cap), at its drain limit, or once the reporting worker has gone silent; scale-in takes the idle
replica first."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from arkserve.domain.draining import replica_key
from arkserve.store import load as load_store
from arkserve.store.routing import ack
from tests.reconciler.conftest import Cluster

GATEWAY = "gw-test:1"


@contextmanager
def gateway(cluster: Cluster, busy: dict[str, int]) -> Iterator[None]:
    """A live gateway worker that has dropped every draining replica (it acks far ahead) and reports ``busy``
    (replica -> requests in flight) every 0.3 s, as gateway/load.py does; a replica taken out of ``busy`` is
    reported once at 0, as the real one does."""
    stop = threading.Event()
    sent: set[str] = set()

    def run() -> None:
        while not stop.is_set():
            now = dict(busy)
            loads = {replica_key(r): (n, 0) for r, n in now.items()}
            loads.update({replica_key(r): (0, 0) for r in sent - set(now)})
            sent.intersection_update(now)
            sent.update(now)
            with cluster.store.begin() as conn:
                ack(conn, GATEWAY, 10**12)
                load_store.report(conn, GATEWAY, loads)
            stop.wait(0.3)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5)


def _restart(cluster: Cluster, drain_timeout_s: float) -> None:
    cluster.stop()
    cluster.config = dataclasses.replace(cluster.config, drain_report_s=0.5, drain_timeout_s=drain_timeout_s)
    cluster.start()


def _reported(cluster: Cluster, replica: str) -> int:
    with cluster.store.read() as conn:
        return load_store.replicas_inflight(conn, [replica]).get(replica, 0)


def _stopped(cluster: Cluster, service: str) -> list[str]:
    """The service's "stopped" events, once there is one (it is written just after the stop)."""
    cluster.wait("the stopped event", lambda: bool(cluster.event_messages(service, "stopped")), timeout=5)
    return cluster.event_messages(service, "stopped")


def _running(cluster: Cluster) -> set[str]:
    return {info.replica for info in cluster.runtime.list()}


def test_a_draining_replica_is_kept_while_a_gateway_reports_a_request_on_it(cluster: Cluster) -> None:
    _restart(cluster, drain_timeout_s=1.0)
    cluster.create("svc", 1)
    cluster.wait("ready", lambda: len(cluster.ready("svc")) == 1)
    rid = cluster.ready("svc")[0].id
    busy = {rid: 1}
    with gateway(cluster, busy):
        cluster.scale("svc", 0)
        cluster.wait("draining", lambda: [r.state for r in cluster.replicas("svc")] == ["draining"])
        time.sleep(3.0)  # 3 times drain_timeout_s, the old cap: the request in flight holds it
        assert _running(cluster) == {rid} and [r.state for r in cluster.replicas("svc")] == ["draining"]
        busy.clear()  # the request ended
        cluster.wait("stopped", lambda: not _running(cluster), timeout=5)
    assert _stopped(cluster, "svc") == [f"replica {rid} stopped"]


def test_the_drain_limit_and_a_silent_gateway_end_a_drain(cluster: Cluster) -> None:
    _restart(cluster, drain_timeout_s=1.0)
    cluster.create("short", 1, request_timeout_s=1.5)  # its drain limit: 1.5 + 1 s
    cluster.create("long", 1)  # 60 + 1 s
    cluster.wait("ready", lambda: len(cluster.ready("short")) == len(cluster.ready("long")) == 1)
    short, long_ = cluster.ready("short")[0].id, cluster.ready("long")[0].id
    busy = {short: 2, long_: 1}
    with gateway(cluster, busy):
        t0 = time.monotonic()
        cluster.scale("short", 0)
        cluster.wait("short stopped", lambda: short not in _running(cluster), timeout=10)
        assert time.monotonic() - t0 >= 2.4
    assert _stopped(cluster, "short") == [
        f"replica {short} stopped after draining for 2.5 s, with 2 requests still in flight"]
    # the worker stopped reporting (gone, stuck): its rows go stale after store.load.FRESH_S, then the replica stops
    t0 = time.monotonic()
    cluster.scale("long", 0)
    cluster.wait("long stopped", lambda: long_ not in _running(cluster), timeout=10)
    assert time.monotonic() - t0 < 8
    assert _stopped(cluster, "long") == [f"replica {long_} stopped"]


def test_scale_in_drains_the_idle_replica_not_the_newest_busy_one(cluster: Cluster) -> None:
    cluster.create("pair", 2)
    cluster.wait("2 ready", lambda: len(cluster.ready("pair")) == 2)
    oldest, newest = (r.id for r in cluster.replicas("pair"))  # oldest first
    busy = {newest: 1}
    with gateway(cluster, busy):
        cluster.wait("report", lambda: _reported(cluster, newest) == 1)  # before the scale-in
        cluster.scale("pair", 1)
        cluster.wait("one left", lambda: [r.id for r in cluster.replicas("pair")] == [newest], timeout=10)
    assert newest in _running(cluster) and oldest not in _running(cluster)
