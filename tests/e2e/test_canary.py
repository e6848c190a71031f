"""Canary revisions on the whole platform (`arkserve up`, local runtime, the tiny app that reports its VERSION):
the split lands where its weight says, a key header sticks to one revision, the request log names the revision,
and rollback and promote under continuous load fail no request (docs/canary.md)."""

from __future__ import annotations

import ssl
import time
from collections import Counter
from typing import Any

import httpx

from arkserve.sdk.auth import ArkAuth
from tests.e2e.conftest import Platform
from tests.e2e.load import Load


def _canary_serving(platform: Platform, name: str, timeout: float = 60) -> dict[str, Any]:
    """Until the canary's replicas are ready and every gateway worker routes to them: the reconciler writes the
    canary's words into the status message only once the gateways have acknowledged its newest ready replica."""
    deadline = time.monotonic() + timeout
    with platform.client() as c:
        while True:
            svc: dict[str, Any] = c.get(f"/services/{name}")
            can = svc["canary"]
            if (can and can["ready"] == can["replicas"] and svc["status"] == "ready"
                    and f"{can['ready']}/{can['replicas']} ready, {can['weight']}%" in svc["message"]):
                return svc
            assert time.monotonic() < deadline, f"canary not serving: {svc}"
            time.sleep(0.1)


def _settled(platform: Platform, name: str, replicas: int, timeout: float = 60) -> dict[str, Any]:
    svc = platform.wait_ready(name, replicas, timeout)
    assert svc["canary"] is None
    return svc


def test_a_canary_split_sticks_by_key_and_rollback_and_promote_fail_no_request(platform: Platform) -> None:
    # each request takes 30 ms in the app, so a replica stopped before the gateways let go of it has requests in flight
    svc = platform.create("bird", 2, env={"VERSION": "1", "DELAY_S": "0.03"})
    stable = svc["revision"]
    p = platform.profile
    url = svc["endpoint"] + "/"
    with platform.client() as c:
        svc = c.patch("/services/bird", {"env": {"VERSION": "2", "DELAY_S": "0.03"}, "canary": 10})
    assert svc["revision"] == stable and svc["canary"]["weight"] == 10 and svc["canary"]["replicas"] == 1
    svc = _canary_serving(platform, "bird")
    canary = svc["canary"]["revision"]
    shown = platform.cli("service", "get", "bird")
    assert shown.returncode == 0 and f"Canary:     {canary}   1/1 ready   split 90/10 (stable/canary)" in shown.stdout
    assert {i["revision"] for i in svc["instances"]} == {stable, canary} and len(svc["instances"]) == 3

    # the split: 10 % +- 3 % of 2 000 tiny requests
    with Load(url, p.access_key, p.secret_key, platform.ca, total=2000, concurrency=20) as load:
        pass
    r = load.result
    print(f"split: sent {r.sent}, versions {dict(r.versions)}, failed {r.failed}")
    assert r.failed == 0, r.errors[:5]
    share = r.versions["2"] / (r.versions["1"] + r.versions["2"])
    assert 0.07 <= share <= 0.13, f"canary share {share:.3f} of {r.sent}"

    # sticky: a key always reaches the same revision; over 40 keys both revisions are met
    by_key: dict[str, set[str]] = {}
    tls = ssl.create_default_context(cafile=platform.ca)
    with httpx.Client(verify=tls, auth=ArkAuth(p.access_key, p.secret_key), timeout=10) as h:
        for k in range(40):
            for _ in range(5):
                resp = h.get(url, headers={"X-Ark-Canary-Key": f"user-{k}"})
                assert resp.status_code == 200, resp.text
                by_key.setdefault(f"user-{k}", set()).add(resp.json()["version"])
    assert all(len(v) == 1 for v in by_key.values()), by_key
    assert Counter(next(iter(v)) for v in by_key.values()).keys() == {"1", "2"}, by_key

    # the request log names the revision that served each request
    with platform.client() as c:
        deadline = time.monotonic() + 10
        while True:
            log = c.get("/services/bird/requests", limit=10000)
            if len(log) >= 2000 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        svc = c.get("/services/bird")
    seen = Counter(row["revision"] for row in log)
    assert set(seen) == {stable, canary} and seen[canary] < seen[stable], seen
    replica_rev = {i["id"]: i["revision"] for i in svc["instances"]}
    assert all(replica_rev[row["replica"]] == row["revision"] for row in log if row["replica"] in replica_rev)

    # re-weighted to 50 % (the same canary replica), then rolled back under load: its replicas drain, nothing fails
    with platform.client() as c:
        assert c.patch("/services/bird", {"canary": 50})["canary"]["revision"] == canary
    _canary_serving(platform, "bird")
    with Load(url, p.access_key, p.secret_key, platform.ca, total=10**9, concurrency=20) as load:
        while load.result.sent < 200:
            time.sleep(0.02)
        with platform.client() as c:
            c.post("/services/bird/canary/rollback", {})
        svc = _settled(platform, "bird", 2)
        sent = load.result.sent
        load.stop_after(sent + 200)
    r = load.result
    print(f"rollback: sent {r.sent}, versions {dict(r.versions)}, failed {r.failed}")
    assert r.failed == 0, r.errors[:5]
    assert svc["revision"] == stable and {i["revision"] for i in svc["instances"]} == {stable}

    # a canary at 50 %, then promote under load: the old revision drains, nothing fails
    with platform.client() as c:
        c.patch("/services/bird", {"env": {"VERSION": "3", "DELAY_S": "0.03"}, "canary": 50})
    _canary_serving(platform, "bird")
    with Load(url, p.access_key, p.secret_key, platform.ca, total=10**9, concurrency=20) as load:
        while load.result.sent < 200:
            time.sleep(0.02)
        with platform.client() as c:
            c.post("/services/bird/canary/promote", {})
        svc = _settled(platform, "bird", 2)
        sent = load.result.sent
        load.stop_after(sent + 200)
    r = load.result
    print(f"promote: sent {r.sent}, versions {dict(r.versions)}, failed {r.failed}")
    assert r.failed == 0, r.errors[:5]
    assert svc["revision"] != stable and {i["revision"] for i in svc["instances"]} == {svc["revision"]}
    assert r.versions["3"] > 0 and r.versions["1"] > 0
    with platform.client() as c:
        kinds = [e["kind"] for e in c.get("/services/bird/events", limit=5000)]
    assert kinds.count("canary") == 3 and "rolled_back" in kinds and "promoted" in kinds
    none = platform.cli("service", "rollback", "bird", "--yes")  # nothing left to roll back: exit 1, the code
    assert none.returncode == 1 and "[NoCanary]" in none.stderr, none


def _until(platform: Platform, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    """Until the service's status reason is ``reason`` and only its canary has replicas (none draining)."""
    deadline = time.monotonic() + timeout
    with platform.client() as c:
        while True:
            svc: dict[str, Any] = c.get(f"/services/{name}")
            if svc["reason"] == reason and len(svc["instances"]) == (svc["canary"] or {}).get("replicas"):
                return svc
            assert time.monotonic() < deadline, f"not {reason}: {svc}"
            time.sleep(0.1)


def test_a_canary_beside_a_stable_revision_at_0_serves_and_the_status_says_so(platform: Platform) -> None:
    """Stable scaled to 0 with a canary: the canary takes every request, and the service is ready (CanaryOnly),
    not stopped, over the API and in the CLI (docs/canary.md)."""
    svc = platform.create("solo", 1, env={"VERSION": "1"})
    stable = svc["revision"]
    with platform.client() as c:
        c.patch("/services/solo", {"env": {"VERSION": "2"}, "canary": 10})
    canary = _canary_serving(platform, "solo")["canary"]["revision"]
    with platform.client() as c:
        c.patch("/services/solo", {"replicas": 0})
    svc = _until(platform, "solo", "CanaryOnly")
    assert (svc["status"], svc["replicas"], svc["ready"]) == ("ready", 0, 0), svc
    assert svc["canary"]["ready"] == svc["canary"]["replicas"] == 1, svc
    assert f"stable revision {stable} scaled to 0: canary {canary} serves every request (1/1 replicas ready)" \
        in svc["message"], svc
    assert {i["revision"] for i in svc["instances"]} == {canary}

    p = platform.profile
    with Load(svc["endpoint"] + "/", p.access_key, p.secret_key, platform.ca, total=200, concurrency=10) as load:
        pass
    r = load.result
    assert r.failed == 0 and r.versions == {"2": 200}, (r.versions, r.errors[:5])

    shown = platform.cli("service", "get", "solo")
    assert shown.returncode == 0, shown.stderr
    assert "Status:     ready (CanaryOnly)" in shown.stdout, shown.stdout
    assert "Replicas:   0/0 ready (+ canary 1/1 ready)" in shown.stdout, shown.stdout
    listed = platform.cli("service", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("solo"))
    assert "ready" in row and "0 +1 canary" in row and "CanaryOnly" in row and "stopped" not in row, listed.stdout

    # stable back to 1: the stable revision's words again, the canary's after them
    with platform.client() as c:
        c.patch("/services/solo", {"replicas": 1})
    svc = _canary_serving(platform, "solo")
    assert svc["reason"] == "Running" and svc["ready"] == 1, svc


def test_a_canary_started_on_a_service_already_at_0_starts(platform: Platform) -> None:
    """A service at 0 that the loop had set aside as idle (stopped, nothing to do) still gets its canary's replica:
    docs/canary.md, "a service scaled to 0 still gets 1"."""
    svc = platform.create("dormant", 0, env={"VERSION": "1"})
    assert (svc["status"], svc["reason"], svc["message"]) == ("stopped", "ScaledToZero", "0 replicas desired")
    with platform.client() as c:
        c.patch("/services/dormant", {"env": {"VERSION": "2"}, "canary": 10})
    svc = _until(platform, "dormant", "CanaryOnly")
    assert svc["canary"]["ready"] == 1 and svc["status"] == "ready", svc
