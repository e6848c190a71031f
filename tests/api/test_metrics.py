"""The metrics endpoint: request-log rows aggregated into aligned buckets, percentiles, 4xx/5xx, visibility."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import update

from arkserve.api.metrics import aggregate, bucket_bounds, percentile
from arkserve.domain.durations import parse_duration
from arkserve.errors import ValidationFailed
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from arkserve.store import events as event_store
from arkserve.store.db import open_store
from arkserve.store.metrics import RequestSample
from arkserve.store.tables import services
from tests.api.conftest import LiveApi

SPEC = {"name": "flowers", "image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 2}


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("45", 45),
                                               ("0.5m", 30)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "window") == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "0s", "abc", "1y", "nan", "inf"])
def test_bad_durations_name_the_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_duration(text, "step")
    assert e.value.field == "step"


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 50, None), ([7.0], 99, 7.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([1.0, 2.0, 3.0, 4.0], 99, 4.0),
    ([float(i) for i in range(1, 101)], 99, 99.0), ([float(i) for i in range(1, 101)], 50, 50.0),
])
def test_nearest_rank_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_buckets_are_aligned_to_the_step() -> None:
    start, end, count = bucket_bounds(1000.5, 900, 30)
    assert (start, end, count) == (1020 - 900, 1020, 30)
    assert bucket_bounds(1000.5, 100, 30) == (1020 - 120, 1020, 4)  # a window not a multiple of step rounds up


def test_aggregate_counts_rates_latency_and_errors() -> None:
    now = 1005.0  # buckets: [930, 960), [960, 990) and the current [990, 1020), 15 s of it elapsed
    samples = [RequestSample(935.0, 200, 10.0, "a"), RequestSample(940.0, 200, 30.0, "b"),
               RequestSample(950.0, 404, 20.0, "a"), RequestSample(975.0, 503, 100.0, "b"),
               RequestSample(1000.0, 200, 5.0, "a"),
               RequestSample(900.0, 200, 1.0, "old")]  # before the window: ignored
    start, end, buckets, totals, by_replica = aggregate(samples, now=now, window_s=90, step_s=30)
    assert (start, end) == (930.0, 1020.0)
    assert [b.time for b in buckets] == [930.0, 960.0, 990.0]
    first, second, current = buckets
    assert (first.requests, first.errors_4xx, first.errors_5xx) == (3, 1, 0)
    assert first.rps == pytest.approx(0.1) and (first.p50_ms, first.p99_ms) == (20.0, 30.0)
    assert (second.requests, second.errors_5xx, second.p99_ms) == (1, 1, 100.0)
    assert (current.requests, current.p50_ms) == (1, 5.0) and current.rps == pytest.approx(1 / 15, abs=1e-6)
    assert (totals.requests, totals.errors_4xx, totals.errors_5xx, totals.p99_ms) == (5, 1, 1, 100.0)
    assert totals.rps == pytest.approx(5 / 75, abs=1e-6)
    assert by_replica == {"a": 3, "b": 2}
    assert aggregate([], now=now, window_s=90, step_s=30)[3].p50_ms is None


def test_metrics_endpoint(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", SPEC)
        empty = c.get("/services/flowers/metrics")
        assert (empty["window_s"], empty["step_s"], len(empty["buckets"])) == (900, 30, 30)
        assert empty["totals"]["requests"] == 0 and empty["by_replica"] == {}
        assert (empty["ready"], empty["desired"]) == (0, 2)

        store = open_store(live_api.database_url, migrate_schema=False)
        now = time.time()
        rows = [{"time": now - 5 - i * 0.1, "service": "flowers", "replica": "r1" if i % 2 else "r2",
                 "method": "GET", "path": f"/{i}", "status": 200 if i < 18 else (404 if i == 18 else 500),
                 "latency_ms": float(i + 1), "bytes_in": 0, "bytes_out": 10, "access_key": "", "client": "",
                 "request_id": f"id{i}"} for i in range(20)]
        rows.append({**rows[0], "time": now - 3600, "request_id": "old"})  # outside a 15 m window
        rows.append({**rows[0], "service": "other", "request_id": "other"})  # another service
        # one asynchronous inference: the gateway's 202 at intake, two status polls and a result fetch (which
        # repeats the stored 500), none with a replica, are not requests of the service; its delivery to a
        # replica is one of the 20 above. The gateway's own 503 (no replica ready) is one.
        rid = "/async/ar_" + "0" * 32
        ours = {**rows[0], "replica": "", "latency_ms": 0.5}
        rows += [{**ours, "method": "POST", "path": "/predict", "status": 202, "request_id": "intake"},
                 {**ours, "path": rid, "status": 200, "request_id": "poll1"},
                 {**ours, "path": rid, "status": 200, "request_id": "poll2"},
                 {**ours, "path": rid + "/result", "status": 500, "request_id": "result"},
                 {**ours, "path": "/predict", "status": 503, "latency_ms": 21.0, "request_id": "refused"}]
        with store.begin() as conn:
            event_store.insert_requests(conn, rows)
            # made two hours ago: a service's metrics count only the requests since it was created
            conn.execute(update(services).where(services.c.name == "flowers").values(created_at=now - 7200))
        store.dispose()

        m = c.get("/services/flowers/metrics", window="5m", step="1m")
        assert len(m["buckets"]) == 5 and m["buckets"][0]["time"] % 60 == 0
        t = m["totals"]
        assert (t["requests"], t["errors_4xx"], t["errors_5xx"]) == (21, 1, 2)
        assert (t["p50_ms"], t["p99_ms"]) == (11.0, 21.0)
        assert m["by_replica"] == {"": 1, "r1": 10, "r2": 10}
        assert sum(b["requests"] for b in m["buckets"]) == 21
        assert c.get("/services/flowers/metrics", window="2h", step="5m")["totals"]["requests"] == 22


@pytest.mark.parametrize(("params", "field"), [
    ({"window": "soon"}, "window"), ({"step": "0s"}, "step"), ({"window": "30d"}, "window"),
    ({"window": "1d", "step": "1s"}, "step")])
def test_bad_parameters_are_422_with_the_field(live_api: LiveApi, params: dict[str, str], field: str) -> None:
    with live_api.client() as c:
        c.post("/services", SPEC)
    resp = httpx.get(f"{live_api.url}/api/v1/services/flowers/metrics", params=params,
                     auth=ArkAuth(live_api.admin_ak, live_api.admin_sk))
    assert resp.status_code == 422 and resp.json()["field"] == field, resp.text


def test_other_users_services_look_missing(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "ursula", "password": "ursula-password"})
        key = admin.post("/keys", {"username": "ursula"})
        admin.post("/services", SPEC)
    with live_api.client(key["access_key"], key["secret_key"]) as ursula:
        with pytest.raises(ApiError) as e:
            ursula.get("/services/flowers/metrics")
        assert (e.value.status, e.value.code) == (404, "ServiceNotFound")
