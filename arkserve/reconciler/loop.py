"""The reconciler loop: adoption on start, then passes whose work follows what changed.

Every ``wake_poll_s`` (at once when the reconciler is quiet and someone commits to the store:
:mod:`arkserve.reconciler.wake`) a pass reads the store's change feed (services whose desired state, status
or replica rows moved since the last look: one indexed query) and acts on those, plus what the :class:`Schedule` says is
due (services whose replicas move by themselves, ready replicas due a probe, a slice of the slow resync). A
pass with nothing due costs that one query; otherwise the runtime is listed once for all services, and their
rows are read in batches. Each service is reconciled in its own worker thread; a service whose previous pass
is still running is carried to the next pass, so one broken service (a hung runtime call, a slow probe) never
stalls the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from arkserve.capacity.inventory import HostInventory
from arkserve.errors import ArkserveError
from arkserve.outage import OutageLog
from arkserve.reconciler import wake as store_wake
from arkserve.reconciler.autoscaler import Autoscaler
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.schedule import Schedule
from arkserve.reconciler.startwatch import StartWatch
from arkserve.reconciler.worker import DRAINING, FAILED, PENDING, ServiceWorker
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.base import ReplicaInfo, Runtime
from arkserve.storage.market import BlobStore
from arkserve.store import events as event_store
from arkserve.store import models as model_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, bump, version

log = logging.getLogger("arkserve.reconciler")
Result = tuple[service_store.ServiceRow, list[service_store.ReplicaRow]] | None  # a service's pass: how it ended


SCALED_TO_ZERO = ("stopped", "ScaledToZero", "0 replicas desired")  # what summarize() says of such a service


def idle(svc: service_store.ServiceRow, rows: list[service_store.ReplicaRow], infos: dict[str, ReplicaInfo] | None,
         config: ReconcilerConfig) -> bool:
    """True for a service with 0 replicas desired, no canary (which gets a replica even then), none in the store
    or the runtime, and the status that says so: its pass would do nothing (most of them, at 10 000 services), so
    none is run."""
    return (svc.replicas == 0 and not svc.canary_spec and not rows and not infos and not svc.deleting
            and (svc.status, svc.reason, svc.message) == SCALED_TO_ZERO)


class Reconciler:
    def __init__(self, store: Store, runtime: Runtime, data_dir: Path, config: ReconcilerConfig | None = None, *,
                 registry: RegistryPulls | None = None, inventory: Callable[[], HostInventory] | None = None,
                 autoscaler: Autoscaler | None = None) -> None:
        self.store, self.runtime, self.data_dir, self.registry = store, runtime, data_dir, registry
        self.autoscaler = autoscaler or Autoscaler(store)  # replica counts of autoscaled services (every pass)
        self.config = config or ReconcilerConfig()
        self.placer = Placer(store, runtime.name, self.config, inventory)  # inventory: NVML unless a test's
        self.starts = StartWatch(runtime)  # workers start through it: a new replica is probed every 10 ms
        self.wake: store_wake.Wake | None = None  # a commit ends a quiet pause at once (made by run())
        self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="ark-svc")
        self.stopper = ThreadPoolExecutor(self.config.stop_workers, thread_name_prefix="ark-stop")
        self.workers: dict[int, ServiceWorker] = {}
        self.inflight: dict[int, Future[Result]] = {}
        self.stop_event = threading.Event()
        self.schedule = Schedule(self.config.interval_s, self.config.resync_s)
        self.seen = -1  # the "changes" version read so far; -1 until the first pass (which takes every service)
        self.carry: set[int] = set()  # due, but not acted on yet (previous pass still running, runtime away)

    def _worker(self, service_id: int) -> ServiceWorker:
        if service_id not in self.workers:
            self.workers[service_id] = ServiceWorker(self.store, self.starts.runtime, self.config, self.data_dir,
                                                     self.stopper, registry=self.registry, placer=self.placer)
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
        now = time.monotonic()
        self._harvest(now)
        with self.store.read() as conn:
            if self.seen < 0:  # the first pass: every service
                seen, changed = version(conn, "changes"), []
                every = service_store.all_ids(conn)
                ids: list[int] | None = every
                self.carry.update(every)
            else:
                changed = service_store.changed_since(conn, self.seen)
                seen = changed[-1].change_seq if changed else self.seen
                ids = service_store.all_ids(conn) if self.schedule.cycle_over(now) else None
        first, self.seen = self.seen < 0, max(self.seen, seen)
        scaled: set[int] = set()  # services whose count the autoscaler just wrote: acted on now, read afresh below
        try:
            self.autoscaler.observe(changed)
            scaled = self.autoscaler.step(now)
        except ArkserveError as exc:
            log.warning("autoscaler step skipped: %s", exc.message)
        if ids is not None:
            self.schedule.start_cycle(ids, now, done=first)
            for sid in set(self.workers) - set(ids):
                self._forget(sid)
        svcs = {s.id: s for s in changed if s.id not in scaled}
        wanted = (self.carry | self.schedule.due(now) | scaled) - svcs.keys()
        self.carry = wanted | svcs.keys()  # until they are handed to a worker
        if not self.carry:
            return
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
            if wanted:
                svcs.update((s.id, s) for s in service_store.by_ids(conn, wanted))
            rows = service_store.replicas_by_service(conn, svcs)
        for sid in wanted - svcs.keys():  # deleted
            self._forget(sid)
        self.carry = set()
        for svc in svcs.values():
            running = self.inflight.get(svc.id)
            if running is not None:
                self.carry.add(svc.id)  # still busy with its previous pass: never block the others
                continue
            if idle(svc, rows[svc.id], by_service.get(svc.name), self.config):
                self.schedule.note(svc, [], now)  # nothing asked, nothing running, the status says so
                continue
            self.inflight[svc.id] = self.pool.submit(self._guarded, self._worker(svc.id), svc, rows[svc.id],
                                                     by_service.get(svc.name, {}), listed_at)

    def _harvest(self, now: float) -> None:
        """Classify the services whose pass ended (busy, serving, steady) for the schedule."""
        for sid, fut in list(self.inflight.items()):
            if not fut.done():
                continue
            del self.inflight[sid]
            result = fut.result()
            if result is None:
                self.schedule.retry(sid, now)
            elif result[0].deleting and not result[1]:
                self._forget(sid)  # removed by that pass
            else:
                self.schedule.note(result[0], result[1], now)

    def _forget(self, service_id: int) -> None:
        self.workers.pop(service_id, None)
        self.schedule.forget(service_id)
        self.carry.discard(service_id)

    @staticmethod
    def _guarded(worker: ServiceWorker, svc: service_store.ServiceRow, rows: list[service_store.ReplicaRow],
                 infos: dict[str, ReplicaInfo], listed_at: float) -> Result:
        try:
            return svc, worker.tick(svc, rows, infos, listed_at)
        except Exception:
            log.exception("reconciling service %s failed; will retry", svc.name)
            return None

    def prune(self) -> None:
        """Drop events, request records and log files of gone replicas older than the retention period, and the
        model market's files that no version lists."""
        cutoff = time.time() - self.config.retention_s
        while True:  # a chunk per transaction: the gateways' request-log writers get the store in between
            with self.store.begin() as conn:
                if not event_store.prune(conn, self.config.retention_s):
                    break
        with self.store.read() as conn:
            live = {r.id for r in service_store.list_replicas(conn)}
            keep = model_store.all_blob_hashes(conn)
        BlobStore(self.data_dir).collect(keep)  # model files no version lists (a refused publish's), past a grace
        for path in (self.data_dir / "logs").glob("*/*.log*"):
            try:
                if path.name.split(".", 1)[0] not in live and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def run(self, leading: Callable[[], bool] | None = None) -> None:
        """Adopt, then pass after pass until stopped, or until ``leading()`` says this process no longer holds
        the leader lease (:mod:`arkserve.reconciler.leader`)."""
        leading = leading or (lambda: True)
        if not leading():
            return
        self.adopt()
        if self.wake is None and self.config.store_wake:  # it sets the pause's event, the start watch's
            self.wake = store_wake.for_url(self.store.engine.url, self.starts.woken, self._quiet)
            if self.wake is not None:
                self.wake.start()
        last_prune = 0.0
        away = OutageLog(log, "pass skipped")
        while not self.stop_event.is_set() and leading():
            self.placer.refresh()  # the host's inventory in the store, at start and every inventory_every_s
            if time.monotonic() - last_prune >= self.config.prune_every_s:
                last_prune = time.monotonic()
                try:
                    self.prune()
                except ArkserveError as exc:
                    log.warning("pruning skipped: %s", exc.message)
            try:
                self.run_pass()
                away.ok()
            except ArkserveError as exc:
                away.failed(exc.message)
            # ends early when a replica just started answers, or (quiet) when someone committed to the store
            self.starts.pause(self.config.wake_poll_s)

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
                rows = service_store.list_replicas(conn)
                if rows:
                    bump(conn)  # a gateway that outlives us drops them from routing (before touch: lock order)
                for r in rows:
                    service_store.delete_replica(conn, r.id)
                    stopped[r.service_id] = stopped.get(r.service_id, 0) + 1
                for sid, n in stopped.items():
                    if sid in names:
                        event_store.record(conn, names[sid], "stopped",
                                           f"arkserve is shutting down: {n} replica(s) stopped; they start "
                                           "again with it")
        except ArkserveError as exc:
            log.warning("replicas stopped, but the store could not be updated: %s", exc.message)
        log.info("stopped %d replica(s) at exit", len(infos))
        return len(infos)

    def _quiet(self) -> bool:
        """No service's pass running or waiting: a commit to the store may start the next pass at once."""
        try:
            return not self.carry and all(f.done() for f in list(self.inflight.values()))
        except RuntimeError:  # the loop changed the dict meanwhile: busy
            return False

    def stop(self) -> None:
        """Stop reconciling; replicas keep running and are adopted by the next reconciler."""
        self.stop_event.set()
        if self.wake is not None:
            self.wake.close()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.stopper.shutdown(wait=True)
