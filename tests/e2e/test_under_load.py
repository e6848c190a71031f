"""Scaling, rolling updates and kill -9 while a load generator runs: count the failed requests."""

from __future__ import annotations

import os
import signal
import time

from tests.e2e.conftest import Platform
from tests.e2e.load import Load


def test_scaling_and_a_rolling_update_under_load_lose_nothing(platform: Platform) -> None:
    svc = platform.create("busy", 1)
    p = platform.profile
    with Load(svc["endpoint"] + "/", p.access_key, p.secret_key, platform.ca, total=2000, concurrency=50,
              min_duration_s=240) as load:
        with platform.client() as c:
            c.patch("/services/busy", {"replicas": 3})
            platform.wait_ready("busy", 3)
            c.patch("/services/busy", {"replicas": 1})
            platform.wait_ready("busy", 1)
            c.patch("/services/busy", {"replicas": 2})
            platform.wait_ready("busy", 2)
            before = c.get("/services/busy")["revision"]
            c.patch("/services/busy", {"env": {"VERSION": "2"}})  # rolling update
            svc = platform.wait_ready("busy", 2)
            assert svc["revision"] != before and {i["revision"] for i in svc["instances"]} == {svc["revision"]}
        load.stop_after(2000)  # the load ran through every step above
    r = load.result
    print(f"sent {r.sent}, statuses {dict(r.statuses)}, per replica {dict(r.replicas)}")
    assert r.sent >= 2000
    assert r.failed == 0, r.errors[:5]
    assert len(r.replicas) >= 4  # the first replica, the scaled-up ones, and 2 new ones from the rollout
    assert set(r.versions) == {"1", "2"}
    with platform.client() as c:
        log = c.get("/services/busy/requests", limit=10000)
    assert {row["replica"] for row in log} >= set(r.replicas)


def test_kill_9_under_load_fails_only_what_was_in_flight(platform: Platform) -> None:
    svc = platform.create("sturdy", 3)
    p = platform.profile
    victim = svc["instances"][0]
    with Load(svc["endpoint"] + "/", p.access_key, p.secret_key, platform.ca, total=1500, concurrency=20,
              min_duration_s=6) as load:
        deadline = time.monotonic() + 30
        while load.result.sent < 100 or len(load.result.replicas) < 3:  # the load reaches all three replicas
            assert time.monotonic() < deadline, f"load not flowing: {load.result.sent} sent"
            time.sleep(0.05)
        before = load.result.sent
        pid = int(next(line for line in (platform.data / "replicas" / f"ark-sturdy-{victim['id']}.json")
                       .read_text().split(",") if '"pid"' in line).split(":")[1])
        os.killpg(pid, signal.SIGKILL)
        time.sleep(4)
        after_errors = len(load.result.errors)
    r = load.result
    print(f"sent {r.sent} ({before} before the kill), failed {r.failed}: {r.errors[:3]}")
    assert r.failed <= 20, f"more failures ({r.failed}) than requests in flight (20)"
    assert len(r.errors) == after_errors  # nothing failed later than 4 s after the kill
