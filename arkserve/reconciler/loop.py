"""The reconciler loop: adoption on start, then a pass per service at least every second.

A spec change (the store's ``specs`` version moving) starts a pass at once. Each service is
reconciled in its own worker thread; a service whose previous pass is still running is skipped,
so one broken service (a hung runtime call, a slow probe) never stalls the others.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from arkserve.errors import ArkserveError
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.worker import DRAINING, FAILED, PENDING, ServiceWorker
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.base import ReplicaInfo, Runtime
from arkserve.store import events as event_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, bump, version

log = logging.getLogger("arkserve.reconciler")


class Reconciler:
    def __init__(self, store: Store, runtime: Runtime, data_dir: Path, config: ReconcilerConfig | None = None, *,
                 registry: RegistryPulls | None = None) -> None:
        self.store, self.runtime, self.data_dir, self.registry = store, runtime, data_dir, registry
        self.config = config or ReconcilerConfig()
        self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="ark-svc")
        self.stopper = ThreadPoolExecutor(4, thread_name_prefix="ark-stop")
        self.workers: dict[int, ServiceWorker] = {}
        self.inflight: dict[int, Future[None]] = {}
        self.stop_event = threading.Event()

    def _worker(self, service_id: int) -> ServiceWorker:
        if service_id not in self.workers:
            self.workers[service_id] = ServiceWorker(self.store, self.runtime, self.config, self.data_dir, self.stopper,
                                                     registry=self.registry)
        return self.workers[service_id]

    def adopt(self) -> None:
        """After a (re)start: keep live replicas we know, stop orphans, mark vanished ones failed."""
        infos = self.runtime.list()
        with self.store.read() as conn:
            services = {s.id: s for s in service_store.list_all(conn)}
            rows = service_store.list_replicas(conn)
        known = {(services[r.service_id].name, r.id) for r in rows if r.service_id in services}
        for info in infos:
            if (info.service, info.replica) not in known:
                log.info("stopping orphan replica %s/%s", info.service, info.replica)
                self.stopper.submit(self.runtime.stop, info.service, info.replica, self.config.stop_grace_s)
        adopted = sum(1 for i in infos if (i.service, i.replica) in known)
        log.info("adopted %d running replica(s), %d orphan(s) stopped", adopted, len(infos) - adopted)
        with self.store.begin() as conn:
            for r in rows:  # a drain or start interrupted by the restart
                if r.state == DRAINING and r.service_id in services:
                    event_store.record(conn, services[r.service_id].name, "draining",
                                       f"resuming drain of replica {r.id}", r.id)
                if r.state == PENDING and r.service_id in services:
                    r.state = FAILED
                    service_store.save_replica(conn, r, routing_changed=False)

    def run_pass(self) -> None:
        listed_at = time.time()
        try:
            infos = self.runtime.list()
        except ArkserveError as exc:
            log.warning("runtime unavailable: %s", exc.message)
            return
        by_service: dict[str, dict[str, ReplicaInfo]] = {}
        for info in infos:
            by_service.setdefault(info.service, {})[info.replica] = info
        with self.store.read() as conn:
            services = service_store.list_all(conn)
            rows = service_store.list_replicas(conn)
        for svc in services:
            running = self.inflight.get(svc.id)
            if running is not None and not running.done():
                continue  # still busy with its previous pass: never block the others
            mine = [r for r in rows if r.service_id == svc.id]
            worker = self._worker(svc.id)
            self.inflight[svc.id] = self.pool.submit(self._guarded, worker, svc, mine,
                                                     by_service.get(svc.name, {}), listed_at)
        gone = set(self.workers) - {s.id for s in services}
        for sid in gone:
            self.workers.pop(sid, None)
            self.inflight.pop(sid, None)

    @staticmethod
    def _guarded(worker: ServiceWorker, svc: service_store.ServiceRow, rows: list[service_store.ReplicaRow],
                 infos: dict[str, ReplicaInfo], listed_at: float) -> None:
        try:
            worker.tick(svc, rows, infos, listed_at)
        except Exception:
            log.exception("reconciling service %s failed; will retry", svc.name)

    def prune(self) -> None:
        """Drop events, request records and log files of gone replicas older than the retention period."""
        cutoff = time.time() - self.config.retention_s
        with self.store.begin() as conn:
            event_store.prune(conn, self.config.retention_s)
            live = {r.id for r in service_store.list_replicas(conn)}
        for path in (self.data_dir / "logs").glob("*/*.log*"):
            try:
                if path.name.split(".", 1)[0] not in live and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def run(self) -> None:
        self.adopt()
        last_pass, seen, last_prune = 0.0, -1, 0.0
        while not self.stop_event.is_set():
            try:
                with self.store.read() as conn:
                    current = version(conn, "specs")
            except ArkserveError:
                current = seen
            if time.monotonic() - last_prune >= self.config.prune_every_s:
                last_prune = time.monotonic()
                try:
                    self.prune()
                except ArkserveError as exc:
                    log.warning("pruning skipped: %s", exc.message)
            if current != seen or time.monotonic() - last_pass >= self.config.interval_s:
                seen, last_pass = current, time.monotonic()
                try:
                    self.run_pass()
                except ArkserveError as exc:
                    log.warning("pass skipped: %s", exc.message)
            self.stop_event.wait(self.config.wake_poll_s)

    def stop_all_replicas(self, grace_s: float = 5.0) -> int:
        """Stop every replica and forget it (``arkserve up``'s Ctrl-C); the next start creates them anew.

        The store loses the replica rows (an event per service says why), so the next reconciler
        starts fresh replicas instead of counting these as crashed."""
        infos = self.runtime.list()
        with ThreadPoolExecutor(max(1, min(8, len(infos))), thread_name_prefix="ark-exit") as pool:
            for f in [pool.submit(self.runtime.stop, i.service, i.replica, grace_s) for i in infos]:
                try:
                    f.result()
                except Exception:
                    log.exception("stopping a replica at exit failed")
        try:
            with self.store.begin() as conn:
                names = {s.id: s.name for s in service_store.list_all(conn)}
                stopped: dict[int, int] = {}
                for r in service_store.list_replicas(conn):
                    service_store.delete_replica(conn, r.id)
                    stopped[r.service_id] = stopped.get(r.service_id, 0) + 1
                if stopped:
                    bump(conn)  # a gateway that outlives us drops them from routing
                for sid, n in stopped.items():
                    if sid in names:
                        event_store.record(conn, names[sid], "stopped",
                                           f"arkserve is shutting down: {n} replica(s) stopped; they start "
                                           "again with it")
        except ArkserveError as exc:
            log.warning("replicas stopped, but the store could not be updated: %s", exc.message)
        log.info("stopped %d replica(s) at exit", len(infos))
        return len(infos)

    def stop(self) -> None:
        """Stop reconciling; replicas keep running and are adopted by the next reconciler."""
        self.stop_event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.stopper.shutdown(wait=True)
