"""Lock order on PostgreSQL: a service PATCH and an autoscaler step of the same service, interleaved on purpose.

The autoscaler's step (``reconciler/autoscaler.py``, admission by ``guard.admit_scale`` as ``arkserve reconciler``
injects it) locks the owner's user row, then writes the service row. A PATCH must take the same order
(``store/services.get_for_update`` locks the user row first): were it to lock the service row first and the user
row in its admission, the two would wait for each other and PostgreSQL would abort one as a deadlock (the PATCH a
500, or the step lost). The test holds the step just after its admission until the PATCH is seen waiting for it,
so the interleaving that deadlocks is the one that runs, every time. SQLite's write transactions are serial.

The second test: the reconciler's drain group commit (two replicas' deletes in one transaction) bumps the change
feed, then inserts a billing stop whose foreign key takes ``FOR KEY SHARE`` on the owner's row, while a PATCH holds
that row and waits for the change feed. With the admission's lock ``FOR UPDATE`` (it is ``FOR NO KEY UPDATE``) the
two waited for each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, insert, text

from arkserve.billing import guard
from arkserve.reconciler.autoscaler import Autoscaler
from arkserve.sdk.client import ApiError
from arkserve.settings import BillingSettings
from arkserve.store import events as event_store
from arkserve.store import load as load_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, open_store
from arkserve.store.services import ServiceRow
from arkserve.store.tables import replicas
from tests import pg
from tests.api.conftest import LiveApi

AUTO = {"min": 1, "max": 4, "target": 2}
SPEC = {"name": "flowers", "image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 1,
        "autoscale": AUTO}


@pytest.fixture
def api_database_url(postgres_admin_url: str) -> str:
    """PostgreSQL only, a deadlock detected after 100 ms (the server's default is 1 s)."""
    url = pg.fresh_database(postgres_admin_url)
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET deadlock_timeout = '100ms'")
    return url


def _wait(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def _blocked_by(store: Store, pid: int) -> bool:
    """Another session of this database waits for a lock ``pid`` holds."""
    with store.read() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND :pid = ANY(pg_blocking_pids(pid))"), {"pid": pid}).scalar_one())


def test_a_patch_and_an_autoscaler_step_of_one_service_do_not_deadlock(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", SPEC)
    store = open_store(live_api.database_url)
    admitted = threading.Event()
    outcome: dict[str, Any] = {}

    def admit(conn: Connection, svc: ServiceRow, n: int) -> None:
        guard.admit_scale(conn, BillingSettings(), svc, n)  # as `arkserve reconciler` admits growth (cli/parts.py)
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        admitted.set()
        # the owner's row is held: go on to write the service only once the PATCH waits for this transaction
        _wait(lambda: _blocked_by(store, pid), "the PATCH waits for the autoscaler's transaction")

    def step() -> None:
        try:
            outcome["scaled"] = scaler.step()
        except Exception as exc:  # e.g. psycopg.errors.DeadlockDetected, through SQLAlchemy
            outcome["scaled"] = exc

    try:
        scaler = Autoscaler(store, every_s=0.0, admit=admit)
        with store.begin() as conn:
            scaler.observe(service_store.list_all(conn))
            load_store.report(conn, "gw:1", {"flowers": (6, 0)})  # 6 in flight at target 2: 1 -> 3 replicas
        thread = threading.Thread(target=step)
        thread.start()
        try:
            assert admitted.wait(10), outcome
            with live_api.client() as c:
                try:
                    outcome["patched"] = c.patch("/services/flowers", {"env": {"MODE": "b"}})
                except ApiError as exc:
                    outcome["patched"] = exc
        finally:
            thread.join(30)
        assert not isinstance(outcome["patched"], ApiError), outcome  # a deadlock: 500
        assert not isinstance(outcome["scaled"], Exception), outcome  # a deadlock: the step lost
        with store.read() as conn:
            svc = service_store.get(conn, "flowers")
        assert outcome["scaled"] == {svc.id}
        assert (svc.replicas, svc.spec["env"]) == (3, {"MODE": "b"})  # both written: the PATCH after the step
    finally:
        store.dispose()


def test_a_drain_group_and_a_patch_of_one_service_do_not_deadlock(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", {**SPEC, "replicas": 2, "autoscale": None})
    store = open_store(live_api.database_url)
    outcome: dict[str, Any] = {}
    try:
        with store.begin() as conn:
            sid = service_store.get(conn, "flowers").id
            t = time.time()
            conn.execute(insert(replicas), [
                {"id": "rpending", "service_id": sid, "revision": "r1", "state": "pending", "started_at": None,
                 "updated_at": t},
                {"id": "rready", "service_id": sid, "revision": "r1", "state": "ready", "started_at": t - 60,
                 "updated_at": t}])
        holding = threading.Event()

        def gone(conn: Connection, rid: str) -> None:  # as Worker._finish_drain's write
            service_store.delete_replica(conn, rid)
            event_store.record(conn, "flowers", "stopped", f"replica {rid} stopped", rid)

        def group() -> None:
            try:
                with store.begin() as conn:  # as batch.GroupCommit: one transaction, the tickets in turn
                    gone(conn, "rpending")  # touches the change feed
                    pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                    holding.set()
                    _wait(lambda: _blocked_by(store, pid), "the PATCH waits for the drain group")
                    gone(conn, "rready")  # a running replica: a billing stop, referring to its owner
                outcome["group"] = "committed"
            except Exception as exc:
                outcome["group"] = exc

        thread = threading.Thread(target=group)
        thread.start()
        try:
            assert holding.wait(10)
            with live_api.client() as c:
                try:
                    outcome["patched"] = c.patch("/services/flowers", {"env": {"MODE": "b"}})
                except ApiError as exc:
                    outcome["patched"] = exc
        finally:
            thread.join(30)
        assert outcome["group"] == "committed", outcome
        assert not isinstance(outcome["patched"], ApiError), outcome
    finally:
        store.dispose()
