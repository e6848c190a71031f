"""The meter inside the real reconciler of `arkserve up`: SIGKILL the reconciler while two replicas run; `up`
restarts it, it adopts the replicas, and its meter bills the time it was away exactly once. After `up` stops (a
last pass), every run's ledger entries chain without gap or overlap from its start and add up to its cost."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from arkserve.store.db import Store, open_store
from arkserve.store.tables import billing_ledger
from tests.billing.conftest import assert_chained
from tests.e2e.conftest import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = Platform(tmp_path)
    p.env["ARKSERVE_BILLING_METER_INTERVAL_S"] = "0.2"
    p.start()
    try:
        yield p
    finally:
        p.stop()


def _reconciler_pid(p: Platform) -> int:
    try:
        return int(json.loads((p.data / "run" / "up.json").read_text())["parts"]["reconciler"])
    except (OSError, ValueError, KeyError):
        return 0


def _covered_until(store: Store) -> float:
    with store.read() as conn:
        return float(conn.execute(select(func.coalesce(func.max(billing_ledger.c.period_end), 0.0))).scalar_one())


def _until(what: str, check: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_reconciler_sigkill_mid_run_loses_and_double_counts_nothing(platform: Platform) -> None:
    p = platform
    svc = p.create("metered", 2)
    started = {i["id"]: i["started_at"] for i in svc["instances"]}
    store = open_store(f"sqlite:///{p.data / 'arkserve.db'}", migrate_schema=False)
    try:
        _until("metering", lambda: _covered_until(store) > max(started.values()) + 1)
        victim = _reconciler_pid(p)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        _until("the reconciler to be restarted", lambda: _reconciler_pid(p) not in (0, victim))
        _until("metering after the restart", lambda: _covered_until(store) > killed_at + 2)
        with p.client() as c:  # adopted, not restarted: the same runs
            assert {i["id"]: i["started_at"] for i in c.get("/services/metered")["instances"]} == started
        p.stop()  # the reconciler's last pass bills up to the stop
        segments = assert_chained(store, 50_000)  # cpu.small: 0.05 an hour
        assert {(s["replica_id"], s["started_at"]) for s in segments} == set(started.items())
        for s in segments:  # each run billed continuously across the kill, from its start
            assert s["from_at"] == s["started_at"] and s["from_at"] + s["seconds"] > killed_at + 2
    finally:
        store.dispose()
