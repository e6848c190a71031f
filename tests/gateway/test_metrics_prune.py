"""/metrics forgets the series of replicas gone (a rolling update's old ones) and of deleted services after a
grace period, so that a long-lived gateway's counters do not grow with every replica it ever served."""

from __future__ import annotations

import time
from typing import Any

import httpx

from arkserve.gateway.metrics import Metrics, render
from tests.gateway.harness import route, snapshot
from tests.live import free_port


def _series(gw: Any) -> set[tuple[str, str]]:
    async def read() -> set[tuple[str, str]]:
        m = gw.gw.core.metrics
        return {(s, r) for s, r, _ in m.requests} | {(s, "*hist") for s in m.hist}
    out: set[tuple[str, str]] = gw.call(read())
    return out


def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_gone_replicas_and_a_deleted_services_series_go_after_the_grace(gateway: Any, replicas: Any) -> None:
    old, new, other = replicas("old"), replicas("new"), replicas("other")
    port, port2 = free_port(), free_port()
    gw = gateway(snapshot(1, route("svc", [old.upstream()], port, auth=False),
                          route("gone", [other.upstream()], port2, auth=False)), metrics_grace_s=0.4)
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port2}/").status_code == 200
    assert {("svc", "old"), ("gone", "other"), ("gone", "*hist")} <= _series(gw)
    # a rolling update replaced the replica; the other service was deleted
    gw.publish(snapshot(2, route("svc", [new.upstream()], port, auth=False)))
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    t0 = time.monotonic()
    _until(lambda: not {("svc", "old"), ("gone", "other"), ("gone", "*hist")} & _series(gw))
    assert time.monotonic() - t0 >= 0.3  # kept for the grace, not dropped at once
    assert {("svc", "new"), ("svc", "*hist")} <= _series(gw)  # what is live stays


def test_prune_keeps_what_came_back_and_requests_that_named_no_service() -> None:
    m = Metrics()
    m.observe("svc", "r1", 200, 0.01)
    m.observe("", "", 404, 0.001)
    live: dict[str, set[str]] = {"svc": set()}
    m.prune(live.get, now=0.0, grace_s=10.0)  # r1 gone since 0
    live["svc"] = {"r1"}
    m.prune(live.get, now=5.0, grace_s=10.0)  # back (it restarted with the same id): no longer gone
    live["svc"] = set()
    m.prune(live.get, now=11.0, grace_s=10.0)  # gone again, since 11 this time
    assert ("svc", "r1", "2xx") in m.requests
    m.prune(live.get, now=21.0, grace_s=10.0)
    assert ("svc", "r1", "2xx") not in m.requests and "svc" in m.hist  # the service lives on
    assert ("", "", "4xx") in m.requests
    assert b'replica="r1"' not in render(m)
