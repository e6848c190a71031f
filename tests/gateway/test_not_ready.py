"""The 503 after the queue timeout says why no replica is ready (from the snapshot's status reason)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from tests.gateway.harness import route, snapshot
from tests.live import free_port


@pytest.mark.parametrize(("reason", "words"), [
    ("WrongPort", "its app does not listen on the port the platform gives it"),
    ("ScaledToZero", "it is scaled to 0 replicas"),
    ("Scaling", "its replicas are starting and none is ready yet"),
    ("SomethingNew", "it is not ready (SomethingNew)"),
])
def test_the_queue_timeout_503_says_why_no_replica_is_ready(gateway: Any, reason: str, words: str) -> None:
    port = free_port()
    gateway(snapshot(1, route("svc", [], port, auth=False, not_ready=reason)), queue_timeout_s=0.3)
    resp = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    body = resp.json()
    assert body["code"] == "NoReplicaAvailable" and body["request_id"]
    assert body["message"] == (f"no replica of service svc became ready within 0.3 s: {words}; its owner sees why "
                               "in the service's status")


def test_busy_replicas_are_not_called_not_ready(gateway: Any, replicas: Any) -> None:
    rep = replicas("a")
    port = free_port()
    gateway(snapshot(1, route("svc", [rep.upstream()], port, auth=False, max_concurrency=1)), queue_timeout_s=0.3)
    with httpx.Client(timeout=10) as c1, httpx.Client(timeout=10) as c2:
        slow = threading.Thread(target=lambda: c1.get(f"http://127.0.0.1:{port}/slow=2"))
        slow.start()
        deadline = time.monotonic() + 5
        while "/slow=2" not in rep.hits:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        resp = c2.get(f"http://127.0.0.1:{port}/")
        slow.join()
    assert resp.status_code == 503 and "no ready replica became free within 0.3 s" in resp.json()["message"]
