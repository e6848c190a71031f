"""Two real `arkserve reconciler` processes on one real PostgreSQL with the local runtime: exactly one acts (the
other says in its log that it waits), SIGKILL it and the other takes over within 15 s, adopting the replicas
the first one started instead of starting them again."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from arkserve.runtimes.local import LocalRuntime
from arkserve.schemas import ServiceSpec
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, open_store
from tests import pg

APP = Path(__file__).with_name("app.py")
WAITING = "waiting: another reconciler leads"
LEADING = "leading: this process holds the store lease"


def _wait(what: str, cond: Callable[[], bool], timeout: float, logs: list[Path]) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.fixture
def pg_store(postgres_admin_url: str) -> Iterator[tuple[str, Store]]:
    url = pg.fresh_database(postgres_admin_url)
    store = open_store(url)
    yield url, store
    store.dispose()


def test_one_reconciler_acts_and_the_other_takes_over_after_sigkill(tmp_path: Path,
                                                                     pg_store: tuple[str, Store]) -> None:
    url, store = pg_store
    data, app = tmp_path / "data", tmp_path / "app"
    app.mkdir()
    shutil.copy(APP, app / "app.py")
    spec = ServiceSpec(image=str(app), port=8000, command=f"{sys.executable} app.py", health_path="/healthz",
                       startup_timeout_s=20).model_dump()
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "owner", "h", "user").id
    env = {**os.environ, "ARKSERVE_DATA_DIR": str(data), "ARKSERVE_DATABASE_URL": url, "ARKSERVE_LOG_LEVEL": "info",
           "ARKSERVE_LEADER_ELECTION": "store", "ARKSERVE_LEASE_DURATION_S": "10"}
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            p = subprocess.Popen([sys.executable, "-m", "arkserve", "reconciler"], env=env, stdout=fh,
                                 stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    def text(i: int) -> str:
        return logs[i].read_text(errors="replace")

    def replicas() -> list[service_store.ReplicaRow]:
        with store.read() as conn:
            return service_store.list_replicas(conn)

    def ready() -> set[str]:
        return {r.id for r in replicas() if r.state == "ready"}

    try:
        a = spawn(logs[0])
        _wait("A to lead", lambda: LEADING in text(0), 30, logs)
        assert "store writes fenced by the reconciler lease" in text(0)  # store/fence.py guards its writes
        spawn(logs[1])
        _wait("B to say it waits", lambda: WAITING in text(1), 30, logs)
        with store.begin() as conn:
            service_store.create(conn, "lead", owner, spec, 2, 20001)
        _wait("2 ready replicas", lambda: len(ready()) == 2, 60, logs)
        first = ready()
        assert "adopted" in text(0) and "adopted" not in text(1)  # only the leader runs a reconciler
        assert LEADING not in text(1)

        a.send_signal(signal.SIGKILL)
        a.wait(10)
        killed = time.monotonic()
        took = _wait("B to take over", lambda: LEADING in text(1), 15, logs)
        assert took <= 15.0
        adopted = re.compile(r"adopted 2 running replica\(s\), 0 orphan\(s\) stopped")
        _wait("B to adopt A's replicas", lambda: adopted.search(text(1)) is not None, 10, logs)
        assert ready() == first  # the same two replicas, not started again

        with store.begin() as conn:
            service_store.update_desired(conn, service_store.get(conn, "lead"), replica_count=3)
        _wait("B to start a third replica", lambda: len(ready()) == 3, 60, logs)
        assert first < ready()
        started = [p.name for p in (data / "replicas").glob("*.json")]
        assert len(started) == 3, started  # every replica the runtime ever ran: none twice
        print(f"takeover {took:.1f} s after SIGKILL ({time.monotonic() - killed:.1f} s with the scale-up)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        rt = LocalRuntime(data)
        for info in rt.list():
            rt.stop(info.service, info.replica, 1)
