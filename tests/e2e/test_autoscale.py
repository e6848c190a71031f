"""Autoscaling on the whole platform (`arkserve up`: api, 2 gateway workers, reconciler): scale from zero holds
every request, idle to zero and wake again, up under load and back down with no failed request, and the manual
``service scale`` of an autoscaled service refused with a way out. Short windows; the big numbers are in
bench/coldstart.py."""

from __future__ import annotations

import shutil
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.e2e.conftest import Platform
from tests.e2e.load import Load

APP = Path(__file__).parent / "coldstart_app.py"


@pytest.fixture(scope="module")
def plat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The gateway's own queue timeout is 1 s: a request held through a 1.5 s cold start is held by the service's
    cold-start timeout, not by it."""
    p = Platform(tmp_path_factory.mktemp("autoscale"))
    p.env["ARKSERVE_GATEWAY_QUEUE_TIMEOUT_S"] = "1"
    shutil.copy(APP, p.app_dir / "coldstart_app.py")
    p.start()
    try:
        yield p
    finally:
        try:
            p.delete_all_services()
        finally:
            p.stop()


def create(p: Platform, name: str, replicas: int, autoscale: dict[str, Any], **env: str) -> dict[str, Any]:
    with p.client() as c:
        c.post("/services", {"name": name, "image": str(p.app_dir), "port": 8000, "health_path": "/healthz",
                             "command": f"{sys.executable} coldstart_app.py", "replicas": replicas, "env": env,
                             "autoscale": autoscale})
    return p.wait_ready(name, replicas)


def wait_for(p: Platform, name: str, what: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with p.client() as c:
        while True:
            svc: dict[str, Any] = c.get(f"/services/{name}")
            if what(svc):
                return svc
            assert time.monotonic() < deadline, f"condition not met: {svc}"
            time.sleep(0.1)


def autoscaled(p: Platform, name: str) -> list[str]:
    with p.client() as c:
        return [e["message"] for e in c.get(f"/services/{name}/events", limit=1000) if e["kind"] == "autoscaled"]


def load(p: Platform, svc: dict[str, Any], total: int, concurrency: int, min_duration_s: float = 0.0) -> Load:
    prof = p.profile
    return Load(svc["endpoint"] + "/", prof.access_key, prof.secret_key, p.ca, total=total, concurrency=concurrency,
                min_duration_s=min_duration_s)


def test_scale_from_zero_holds_every_request_then_idles_to_zero_and_wakes_again(plat: Platform) -> None:
    svc = create(plat, "cold", 0, {"min": 0, "max": 2, "target": 50, "cold_start_timeout_s": 60,
                                   "stable_window_s": 2, "panic_window_s": 1, "scale_in_delay_s": 1,
                                   "idle_to_zero_s": 3}, START_DELAY_S="1.5")
    assert svc["replicas"] == 0 and svc["status"] == "stopped"
    t0 = time.monotonic()
    with load(plat, svc, total=50, concurrency=50) as held:
        pass
    r = held.result
    took = time.monotonic() - t0
    print(f"50 requests at 0 replicas: {dict(r.statuses)} in {took:.2f} s")
    assert r.failed == 0 and r.statuses[200] == 50, r.errors[:5]
    assert took >= 1.5  # they did wait for the slow start
    woke = autoscaled(plat, "cold")
    assert any("0→1" in m and "waiting at 0 replicas" in m for m in woke), woke
    # no request for idle_to_zero_s: back to 0, and the event says why
    wait_for(plat, "cold", lambda s: s["replicas"] == 0 and not s["instances"], timeout=60)
    assert any("→0: no request for" in m for m in autoscaled(plat, "cold"))
    # a request wakes it again
    prof = plat.profile
    resp = httpx.get(svc["endpoint"] + "/again", auth=ArkAuth(prof.access_key, prof.secret_key),
                     verify=ssl.create_default_context(cafile=plat.ca), timeout=60)
    assert resp.status_code == 200, resp.text
    assert sum("0→1" in m for m in autoscaled(plat, "cold")) == 2


def test_scale_up_under_load_and_back_down_fail_no_request(plat: Platform) -> None:
    svc = create(plat, "elastic", 1, {"min": 1, "max": 3, "target": 2, "stable_window_s": 3, "panic_window_s": 1,
                                      "scale_in_delay_s": 2, "idle_to_zero_s": 600}, DELAY_S="0.2")
    with load(plat, svc, total=10**6, concurrency=8) as high:
        try:
            up = wait_for(plat, "elastic", lambda s: s["ready"] >= 2, timeout=60)
            deadline = time.monotonic() + 30
            while len(high.result.replicas) < 2:  # until the new replica has served some of the load
                assert time.monotonic() < deadline, high.result
                time.sleep(0.05)
        finally:
            high.stop_event.set()
    with load(plat, svc, total=10**6, concurrency=1) as low:  # light load goes on while it scales back in
        try:
            down = wait_for(plat, "elastic", lambda s: s["replicas"] == 1 and len(s["instances"]) == 1, timeout=60)
        finally:
            low.stop_event.set()
    for r in (high.result, low.result):
        print(f"sent {r.sent}: {dict(r.statuses)}, per replica {dict(r.replicas)}")
        assert r.failed == 0, r.errors[:5]
    assert up["replicas"] >= 2 and down["replicas"] == 1
    assert len(high.result.replicas) >= 2  # the new replica served
    events = autoscaled(plat, "elastic")
    assert any("1→" in m and "in flight per replica" in m and "> target 2" in m for m in events), events
    assert any("→1:" in m and "< target 2" in m for m in events), events


def test_manual_scale_of_an_autoscaled_service_says_how_to_turn_it_off(plat: Platform) -> None:
    create(plat, "auto", 1, {"min": 1, "max": 2})
    refused = plat.cli("service", "scale", "auto", "2")
    assert refused.returncode != 0
    assert "autoscaled" in refused.stderr and "--autoscale off" in refused.stderr, refused.stderr
    with plat.client() as c:
        assert c.get("/services/auto")["replicas"] == 1
    off = plat.cli("service", "update", "auto", "--autoscale", "off")
    assert off.returncode == 0, off.stderr
    assert plat.cli("service", "scale", "auto", "2").returncode == 0
    assert plat.cli("service", "update", "auto", "--autoscale", "min=0,max=4,target=2").returncode == 0
    shown = plat.cli("service", "get", "auto")
    assert "automatic 0-4 replicas, target 2" in shown.stdout, shown.stdout
    assert plat.cli("service", "update", "auto", "--autoscale", "min=1,max=6").returncode == 0  # only these change
    assert "automatic 1-6 replicas, target 2" in plat.cli("service", "get", "auto").stdout
    bad = plat.cli("service", "update", "auto", "--autoscale", "min=5,max=2")
    assert bad.returncode != 0 and "min (5) is above max (2)" in bad.stderr, bad.stderr
