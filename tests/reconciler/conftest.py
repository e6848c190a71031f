"""A real reconciler (in a thread) over a real store and the real local runtime, with fast timings."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arkserve.domain.services import revision
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.base import Runtime
from arkserve.runtimes.local import LocalRuntime
from arkserve.schemas import ServiceSpec
from arkserve.store import instance_types
from arkserve.store import services as service_store
from arkserve.store import users as user_store
from arkserve.store.db import Store, open_store
from arkserve.store.services import ReplicaRow, ServiceRow

FAST = ReconcilerConfig(interval_s=0.2, wake_poll_s=0.05, drain_timeout_s=3.0, stop_grace_s=2.0,
                        health_timeout_s=0.5, failure_threshold=3, backoff_base_s=0.5, backoff_max_s=2.0)


@dataclass
class Cluster:
    store: Store
    data_dir: Path
    app_dir: Path
    runtime: Runtime
    reconciler: Reconciler | None = None
    thread: threading.Thread | None = None
    owner_id: int = 0
    config: ReconcilerConfig = FAST

    def start(self) -> None:
        self.reconciler = Reconciler(self.store, self.runtime, self.data_dir, self.config)
        self.thread = threading.Thread(target=self.reconciler.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.reconciler is not None:
            self.reconciler.stop_event.set()
            assert self.thread is not None
            self.thread.join(10)
            self.reconciler.stop()
            self.reconciler = None

    def close(self) -> None:
        """After a test: the reconciler stopped, every replica stopped, the runtime and the store closed."""
        self.stop()
        for info in self.runtime.list():
            self.runtime.stop(info.service, info.replica, 0.5)
        self.runtime.close()
        self.store.dispose()

    def spec(self, **overrides: Any) -> dict[str, Any]:
        base = {"image": str(self.app_dir), "port": 8000, "command": f"{sys.executable} app.py",
                "health_path": "/healthz", "startup_timeout_s": 10}
        return ServiceSpec(**{**base, **overrides}).model_dump()

    def create(self, name: str, replicas: int, **overrides: Any) -> None:
        with self.store.begin() as conn:
            service_store.create(conn, name, self.owner_id, self.spec(**overrides), replicas, 20001)

    def scale(self, name: str, replicas: int) -> None:
        with self.store.begin() as conn:
            service_store.update_desired(conn, service_store.get(conn, name), replica_count=replicas)

    def update(self, name: str, **changes: Any) -> None:
        with self.store.begin() as conn:
            svc = service_store.get(conn, name)
            spec = self.spec(**{**svc.spec, **changes})
            service_store.update_desired(conn, svc, spec=spec, new_generation=revision(spec) != revision(svc.spec))

    def delete(self, name: str) -> None:
        with self.store.begin() as conn:
            service_store.mark_deleting(conn, service_store.get(conn, name))

    def service(self, name: str) -> ServiceRow | None:
        with self.store.read() as conn:
            return service_store.find(conn, name)

    def replicas(self, name: str) -> list[ReplicaRow]:
        svc = self.service(name)
        if svc is None:
            return []
        with self.store.read() as conn:
            return service_store.list_replicas(conn, svc.id)

    def ready(self, name: str) -> list[ReplicaRow]:
        return [r for r in self.replicas(name) if r.state == "ready"]

    def wait(self, what: str, cond: Callable[[], bool], timeout: float = 30.0) -> float:
        t0 = time.monotonic()
        while not cond():
            if time.monotonic() - t0 > timeout:
                svc = None
                for r in self.all_services():
                    svc = r
                raise AssertionError(f"timed out waiting for {what}; last service: {svc}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def all_services(self) -> list[ServiceRow]:
        with self.store.read() as conn:
            return service_store.list_all(conn)

    def events(self, name: str) -> list[str]:
        from arkserve.store import events

        with self.store.read() as conn:
            return [e["kind"] for e in events.list_events(conn, name, limit=1000)]

    def event_messages(self, name: str, kind: str) -> list[str]:
        from arkserve.store import events

        with self.store.read() as conn:
            return [e["message"] for e in events.list_events(conn, name, limit=1000) if e["kind"] == kind]


@contextmanager
def running_cluster(tmp_path: Path, make_runtime: Callable[[Path], Any],
                    database_url: str | None = None) -> Iterator[Cluster]:
    """A store (SQLite in ``tmp_path``, or the database at ``database_url``) with an owner and the seed instance
    types, a runtime and a running reconciler; all torn down."""
    data = tmp_path / "data"
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(Path(__file__).with_name("app.py"), app / "app.py")
    store = open_store(database_url or f"sqlite:///{data}/arkserve.db")
    with store.begin() as conn:
        instance_types.seed(conn, [])
        owner = user_store.create(conn, "owner", "h", "user").id
    c = Cluster(store, data, app, make_runtime(data), owner_id=owner)
    c.start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, LocalRuntime) as c:
        yield c
