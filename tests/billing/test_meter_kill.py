"""A real meter process on a real SQLite file, SIGKILLed mid-run again and again while replicas come and go:
afterwards every run's ledger entries chain without gap or overlap from its start to the last pass, and add up to
exactly what the run costs — no second lost, none billed twice."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, select, update

from arkserve.billing.meter import Meter
from arkserve.settings import BillingSettings
from arkserve.store.db import Store, open_store
from arkserve.store.tables import billing_ledger, instance_types, replicas, services, users
from tests.billing.conftest import assert_chained

CHILD = """
import sys
from arkserve.billing.meter import Meter
from arkserve.settings import BillingSettings
from arkserve.store.db import open_store
Meter(open_store(sys.argv[1]), BillingSettings(meter_interval_s=0.005)).run()
"""


def _entries(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(billing_ledger)).scalar_one())


def _wait_for_more(store: Store, proc: subprocess.Popen[bytes], more_than: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _entries(store) <= more_than:
        assert proc.poll() is None, "the meter process died on its own"
        assert time.monotonic() < deadline, "the meter process wrote nothing"
        time.sleep(0.02)


def _assert_exact(store: Store, t_end: float, expect_runs: int) -> None:
    """Every run's entries chain without gap or overlap from its start to the last pass and add up to its cost."""
    segments = assert_chained(store, 70_000)
    with store.read() as conn:
        live = {r.id: r.started_at for r in conn.execute(select(replicas))}
    assert len(segments) == expect_runs
    for seg in segments:
        if live.get(seg["replica_id"]) == seg["started_at"]:  # still running: billed up to the last pass
            assert seg["seconds"] == math.floor(t_end - seg["started_at"]) and not seg["ended"]
        else:
            assert seg["ended"]


def _seed(store: Store, count: int, spacing_s: float) -> None:
    """One user's service of ``count`` ready replicas of a 0.07/h type, started ``spacing_s`` apart until now."""
    now = time.time()
    with store.begin() as conn:
        conn.execute(insert(instance_types).values(name="t.odd", cpus=1.0, memory_mb=512, gpus=0, gpu_model="",
                                                   price_per_hour=0.07, billing="payg", description=""))
        uid = conn.execute(insert(users).values(username="alice", password_hash="x", role="user", disabled=False,
                                                created_at=now, updated_at=now)).inserted_primary_key[0]  # type: ignore[index]
        sid = conn.execute(insert(services).values(
            name="web", owner_id=uid, spec={"instance_type": "t.odd"}, replicas=count, generation=1, status="ready",
            reason="", message="", deleting=False, created_at=now, updated_at=now)).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(insert(replicas), [{"id": f"r{i}", "service_id": sid, "revision": "a", "state": "ready",
                                         "started_at": now - spacing_s * i, "updated_at": now} for i in range(count)])


def test_sigkill_mid_run_loses_and_double_counts_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/arkserve.db"
    store = open_store(url)
    _seed(store, 12, 7.3)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    for kill in range(4):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, url], env=env)
        try:
            _wait_for_more(store, proc, _entries(store) + 20)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        with store.begin() as conn:  # meanwhile a replica crashes and restarts
            conn.execute(update(replicas).where(replicas.c.id == f"r{kill}").values(started_at=time.time()))
    t_end = time.time() + 10
    Meter(store, BillingSettings(), lambda: t_end).run_pass()

    _assert_exact(store, t_end, expect_runs=12 + 4)
    store.dispose()


def test_two_meters_at_once_bill_each_second_once(store: Store) -> None:
    """Two reconcilers (two meters) on one store, SQLite or PostgreSQL: their passes take turns on the lock row."""
    _seed(store, 6, 3.7)
    meters = [Meter(store, BillingSettings(meter_interval_s=0.001)) for _ in range(2)]
    threads = [threading.Thread(target=m.run) for m in meters]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while _entries(store) < 30 and time.monotonic() < deadline:
        time.sleep(0.05)
    for m in meters:
        m.stop_event.set()
    for t in threads:
        t.join()
    t_end = time.time() + 10
    Meter(store, BillingSettings(), lambda: t_end).run_pass()
    _assert_exact(store, t_end, expect_runs=6)
