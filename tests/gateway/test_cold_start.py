"""Autoscaling at the gateway: a request for an autoscaled service at 0 replicas wakes it at once and waits up to
the service's cold-start timeout (not the gateway's queue timeout); 503 + Retry-After only when the queue is full;
each worker reports its in-flight and queued requests per service (docs/autoscaling.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from arkserve.gateway.load import Loads
from tests.gateway.harness import route, snapshot
from tests.live import free_port


class MemoryLoad:
    def __init__(self) -> None:
        self.wakes: list[tuple[str, int]] = []
        self.reports: list[Loads] = []

    def report(self, loads: Loads) -> None:
        self.reports.append(dict(loads))

    def wake(self, service: str, queued: int) -> None:
        self.wakes.append((service, queued))

    def close(self) -> None:
        pass


def until(cond: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_requests_at_zero_wake_the_service_and_wait_for_its_first_replica(gateway: Any, replicas: Any) -> None:
    port = free_port()
    cold = {"auth": False, "not_ready": "ScaledToZero", "cold_start_timeout_s": 10.0}
    g = gateway(snapshot(1, route("svc", [], port, **cold)), queue_timeout_s=0.2, load_report_s=0.05)
    g.gw.core.load = load = MemoryLoad()
    statuses: list[int] = []

    def call() -> None:
        statuses.append(httpx.get(f"http://127.0.0.1:{port}/slow=0.5", timeout=30).status_code)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    until(lambda: any(r.get("svc") == (0, 10) for r in load.reports))  # all ten queued, and reported so
    assert load.wakes and load.wakes[0][0] == "svc"
    assert len(load.wakes) == 1  # one wake per service and worker per wake_every_s (1 s), not one per request
    time.sleep(0.4)  # twice the gateway's queue timeout: still held, by the service's cold-start timeout
    assert statuses == []
    rep = replicas("a")
    g.publish(snapshot(2, route("svc", [rep.upstream()], port, **cold)))  # the first replica is ready
    until(lambda: any(r.get("svc") == (10, 0) for r in load.reports))  # now in flight at the replica
    for t in threads:
        t.join(30)
    assert statuses == [200] * 10
    until(lambda: load.reports[-1].get("svc") == (0, 0))  # and back to zero, reported once


def test_a_full_queue_answers_503_with_retry_after_and_the_cold_start_timeout_ends_the_wait(gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("svc", [], port, auth=False, not_ready="ScaledToZero", cold_start_timeout_s=1.0)),
                queue_timeout_s=0.1, queue_max=1)
    g.gw.core.load = MemoryLoad()
    with httpx.Client(timeout=10) as c1, httpx.Client(timeout=10) as c2:
        first: list[httpx.Response] = []
        held = threading.Thread(target=lambda: first.append(c1.get(f"http://127.0.0.1:{port}/")))
        t0 = time.monotonic()
        held.start()
        until(lambda: bool(g.gw.core.queues.get("svc")))
        full = c2.get(f"http://127.0.0.1:{port}/")
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "the wait queue is full" in full.json()["message"]
        held.join(10)
    assert first[0].status_code == 503 and time.monotonic() - t0 >= 0.9  # cold start (± a tick), not 0.1 s
    assert "no replica of service svc became ready within 1 s: it is scaled to 0" in first[0].json()["message"]


def test_a_cold_start_timeout_shorter_than_the_queue_timeout_is_the_one_kept(gateway: Any) -> None:
    """The service's own cold-start timeout ends the wait, even when it is shorter than the gateway's queue timeout
    (it was the longer of the two: a service set to 5 s answered after 15)."""
    port = free_port()
    gateway(snapshot(1, route("svc", [], port, auth=False, not_ready="ScaledToZero", cold_start_timeout_s=0.5)),
            queue_timeout_s=5.0)
    t0 = time.monotonic()
    resp = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    took = time.monotonic() - t0
    assert resp.status_code == 503 and 0.4 <= took < 2.0, (resp.status_code, took)
    assert "became ready within 0.5 s" in resp.json()["message"]
