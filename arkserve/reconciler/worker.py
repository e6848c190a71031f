"""One service's reconciliation pass: observe replicas, probe them, restart crashed ones, apply the plan.

A :class:`ServiceWorker` keeps the little in-memory state a pass needs between passes
(health-failure counts, restart times, drain start times). Everything a user or a
restarted reconciler needs is written to the store: replica rows, events, the status.
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from sqlalchemy import Connection

from arkserve.domain.draining import drain_limit_s, may_stop
from arkserve.domain.planning import Desired, Observed, ReplicaState, plan
from arkserve.domain.services import revision
from arkserve.errors import ArkserveError, PermanentError, TemporaryError
from arkserve.logs import log_dir_for, read_logs, remove_service_logs
from arkserve.reconciler.batch import GroupCommit, PassWrites
from arkserve.reconciler.capacity import Placer
from arkserve.reconciler.config import ReconcilerConfig
from arkserve.reconciler.health import probe
from arkserve.reconciler.listening import wrong_port_message
from arkserve.reconciler.specs import SpecBuilder, SpecReads
from arkserve.reconciler.summary import CANNOT_START, summarize
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes import spool
from arkserve.runtimes.base import ReplicaInfo, ReplicaPhase, Runtime
from arkserve.store import async_requests as async_store
from arkserve.store import canary as canary_store
from arkserve.store import events as event_store
from arkserve.store import load as load_store
from arkserve.store import services as service_store
from arkserve.store.db import Store, version
from arkserve.store.routing import gateways_caught_up
from arkserve.store.services import ReplicaRow, ServiceRow

log = logging.getLogger("arkserve.reconciler")
READY, STARTING, FAILED, DRAINING, PENDING = (ReplicaState.READY.value, ReplicaState.STARTING.value,
                                               ReplicaState.FAILED.value, ReplicaState.DRAINING.value,
                                               ReplicaState.PENDING.value)


def new_replica_id() -> str:
    return "r" + secrets.token_hex(4)


@dataclass
class ServiceWorker:
    store: Store
    runtime: Runtime
    config: ReconcilerConfig
    data_dir: Path
    stopper: Executor  # stops (grace periods) run here, never inside a pass
    health_failures: dict[str, int] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)
    drain_since: dict[str, float] = field(default_factory=dict)
    drain_target: dict[str, int] = field(default_factory=dict)  # routing version without the replica
    drain_clear: dict[str, float] = field(default_factory=dict)  # since when every gateway worker serves that version
    drain_limit: dict[str, float] = field(default_factory=dict)  # its drain limit, once past the service's own
    stopping: set[str] = field(default_factory=set)
    registry: RegistryPulls | None = None  # pull tokens for images in the platform registry
    writes: int = 0  # replica rows written by this worker (a pass re-reads its rows only after it wrote)
    placer: Placer | None = None  # places each replica on this host before it starts (arkserve/capacity)
    routed: dict[int, int] = field(default_factory=dict)  # service id -> routing version with its newest ready replica
    specs: SpecBuilder = field(init=False)  # what the runtime starts for a replica (reconciler/specs.py)
    batch: PassWrites = field(init=False)  # this pass's writes, committed together (reconciler/batch.py)
    reaper: GroupCommit = field(init=False)  # the drain threads' deletes, committed together

    def __post_init__(self) -> None:
        self.batch, self.reaper = PassWrites(self.store), GroupCommit(self.store)
        self.specs = SpecBuilder(self.store, self.runtime.name, self.config, self.data_dir, self._event,
                                 self.registry, self.placer)

    # ------------------------------------------------------------------------------- store helpers
    def _save(self, rep: ReplicaRow, *, routing: bool = False, later: bool = False) -> None:
        """Write the replica row (``routing``: moves the gateways' snapshot); ``later``: at the pass's next flush."""
        self.batch.save(rep, routing)
        self.writes += 1
        if not later:
            self.batch.flush()

    def _event(self, svc: ServiceRow, kind: str, message: str, replica: str = "", *, later: bool = False) -> None:
        self.batch.event(svc.name, kind, message, replica)
        if not later:
            self.batch.flush()

    def _last_lines(self, svc: ServiceRow, replica: str, n: int = 5) -> str:
        lines = read_logs(self.data_dir / "logs", svc.name, replica, tail=n)
        return " | ".join(line.text for line in lines)[-1500:]

    # ------------------------------------------------------------------------------- actions
    def _start_many(self, svc: ServiceRow, revisions: list[str]) -> None:
        """Start new replicas, 32 at a time: their pending rows and their placements in one transaction, what
        their specs read from the store in one read, their started rows and events in one transaction (after
        the starts)."""
        for i in range(0, len(revisions), 32):
            reps = [ReplicaRow(id=new_replica_id(), service_id=svc.id, revision=r, state=PENDING)
                    for r in revisions[i:i + 32]]
            for rep in reps:
                self._save(rep, later=True)
            wanted = [(canary_store.as_revision(svc, r.revision), r) for r in reps]
            if self.placer is not None:
                got: list[str | ArkserveError | None] = [*self.placer.assign_many(wanted, self.batch)]
            else:
                self.batch.flush()
                got = [None] * len(reps)
            reads = self.specs.reads(svc)
            for rep, placed in zip(reps, got, strict=True):
                self._start(svc, rep, placed, reads)
            self.batch.flush()

    def _start(self, svc: ServiceRow, rep: ReplicaRow, placed: str | ArkserveError | None = None,
               reads: SpecReads | None = None) -> None:
        svc = canary_store.as_revision(svc, rep.revision)  # a canary replica runs the canary's spec
        try:
            if self.placer is not None and not self._placed(svc, rep, placed):
                return
            info = self.runtime.start(self.specs.build(svc, rep.id, rep, reads))
        except TemporaryError as exc:
            rep.state, rep.last_error = PENDING, exc.message
            rep.node, rep.gpu_indices, rep.gpu_share_mb = "", "", 0  # gives its placement up while it waits
            self.restart_at[rep.id] = time.time() + self.config.backoff_max_s / 6
            self._save(rep, later=True)
            return
        except (PermanentError, ArkserveError) as exc:
            rep.node, rep.gpu_indices, rep.gpu_share_mb = "", "", 0  # it cannot start: holds nothing
            self._fail(svc, rep, f"{CANNOT_START} ({exc.code}): {exc.message}")
            return
        if rep.state == PENDING:
            rep.last_error = ""  # no longer waiting for capacity
        rep.state, rep.host, rep.port, rep.runtime_id = STARTING, info.host, info.port, info.runtime_id
        rep.started_at, rep.ready_at, rep.image_digest = info.started_at, None, info.image_digest
        self.health_failures.pop(rep.id, None)
        self._save(rep, later=True)
        image = f" from {svc.spec['image']} ({info.image_digest})" if info.image_digest.startswith("sha256:") else ""
        self._event(svc, "started", f"replica {rep.id} started on {info.host}:{info.port}{image}", rep.id, later=True)

    def _placed(self, svc: ServiceRow, rep: ReplicaRow, placed: str | ArkserveError | None) -> bool:
        """Place the replica (unless ``placed`` says how that went); when it does not fit it waits, pending
        (``Unschedulable``), and is tried each pass."""
        assert self.placer is not None
        before = rep.last_error if placed is None else ""  # placed: a new replica, placed by _start_many
        why = self.placer.assign(svc, rep) if placed is None else placed
        if isinstance(why, ArkserveError):
            raise why
        if why and why != before:
            self._event(svc, "unschedulable", f"replica {rep.id} waits: {why}", rep.id)
        return not why

    def _fail(self, svc: ServiceRow, rep: ReplicaRow, error: str) -> None:
        was_ready = rep.state == READY
        rep.state, rep.last_error = FAILED, error[:4000]
        rep.restarts += 1
        self.restart_at[rep.id] = time.time() + self.config.backoff(rep.restarts)
        self._save(rep, routing=was_ready, later=True)
        self._event(svc, "crashed", f"replica {rep.id}: {error}", rep.id)  # committed before the stop
        self.stopping.add(rep.id)  # no restart of this id until the old process is gone
        self.stopper.submit(self._stop_quietly, svc.name, rep.id, 0.0)

    def _stop_quietly(self, service: str, replica: str, grace: float) -> None:
        try:
            self.runtime.stop(service, replica, grace)
        except ArkserveError as exc:
            log.warning("stopping %s/%s failed: %s", service, replica, exc.message)
        finally:
            self.stopping.discard(replica)
            self.specs.unpin(service, replica)

    def _finish_drain(self, svc: ServiceRow, rep: ReplicaRow, why: str = "") -> None:
        try:
            self.runtime.stop(svc.name, rep.id, self.config.stop_grace_s)

            def gone(conn: Connection) -> None:
                service_store.delete_replica(conn, rep.id)
                event_store.record(conn, svc.name, "stopped", f"replica {rep.id} stopped{why}", rep.id)
            self.reaper.run(gone)  # with the other drain threads' deletes of the moment
        except ArkserveError as exc:
            log.warning("draining %s/%s failed: %s", svc.name, rep.id, exc.message)
        finally:
            self.stopping.discard(rep.id)
            self.specs.unpin(svc.name, rep.id)
            for drains in (self.drain_since, self.drain_target, self.drain_clear, self.drain_limit):
                drains.pop(rep.id, None)

    def _drained(self, svc: ServiceRow, rep: ReplicaRow, now: float) -> str | None:
        """None while the draining replica is to be left alone; else why it stops ("" when nothing is left on it):
        every live gateway worker dropped it and none reports a request on it, or its drain limit passed
        (domain/draining.py)."""
        cfg = self.config
        waited = now - self.drain_since.setdefault(rep.id, now)
        if waited < cfg.drain_min_s:
            return None
        with self.store.read() as conn:
            target = self.drain_target.setdefault(rep.id, version(conn))  # after a restart: the current version
            clear: float | None = None
            if gateways_caught_up(conn, target, cfg.gateway_fresh_s):
                clear = now - self.drain_clear.setdefault(rep.id, now)
            inflight = load_store.replicas_inflight(conn, [rep.id]).get(rep.id, 0)
            gateways = (load_store.live_gateways(conn, cfg.gateway_fresh_s) if clear is not None and not inflight
                        else -1)  # (not asked: it decides nothing then)
            limit = self._drain_limit(conn, svc, rep, waited)
        if not may_stop(waited, caught_up_for=clear, inflight=inflight, gateways=gateways, min_s=cfg.drain_min_s,
                        report_s=cfg.drain_report_s, limit_s=limit):
            return None
        if waited < limit:
            return ""
        if inflight:
            return f" after draining for {limit:g} s, with {inflight} requests still in flight"
        return f" after draining for {limit:g} s" + ("" if clear is not None else ", before every gateway dropped it")

    def _drain_limit(self, conn: Connection, svc: ServiceRow, rep: ReplicaRow, waited: float) -> float:
        """The service's request timeout plus ``drain_timeout_s``; once that passed, asyncq.request_timeout_s plus
        it when the service has asynchronous requests running (the dispatcher's may be on this replica)."""
        if rep.id in self.drain_limit:
            return self.drain_limit[rep.id]
        request_s = float(svc.spec.get("request_timeout_s", 60.0))
        limit = drain_limit_s(request_s, self.config.drain_timeout_s)
        if waited >= limit:
            running = async_store.queue_depth(conn).get(svc.name, {}).get(async_store.RUNNING, 0)
            if running:
                limit = drain_limit_s(request_s, self.config.drain_timeout_s, self.config.async_request_timeout_s)
            self.drain_limit[rep.id] = limit
        return limit

    # ------------------------------------------------------------------------------- one pass
    def observe(self, svc: ServiceRow, rep: ReplicaRow, info: ReplicaInfo | None, listed_at: float) -> None:
        """Update one replica from what the runtime and a probe say."""
        now = time.time()
        if rep.state in (STARTING, READY):
            started = rep.started_at or 0.0
            if info is None and started < listed_at:
                self._fail(svc, rep, "replica disappeared from the runtime")
                return
            if info is not None and info.phase == ReplicaPhase.EXITED:
                lines = self._last_lines(svc, rep.id)
                tail = f"; last output: {lines}" if lines else ""
                why = f" ({info.error})" if info.error else ""  # e.g. OOMKilled, with the memory limit
                self._fail(svc, rep, f"exited with code {info.exit_code}{why}{tail}")
                return
            if info is None:
                return
            ok, reason = probe(rep.host, rep.port or 0, svc.spec.get("health_path"), self.config.health_timeout_s)
            if rep.state == STARTING:
                if not ok and "nothing listens" in reason and now - started >= self.config.port_check_after_s:
                    wrong = wrong_port_message(info.runtime_id, rep.port or 0)  # it listens, but elsewhere?
                    if wrong and wrong != rep.last_error:
                        self._event(svc, "wrong_port", f"replica {rep.id}: {wrong}", rep.id, later=True)
                    reason = wrong or reason
                if ok:
                    rep.state, rep.ready_at, rep.last_error = READY, now, ""
                    self._save(rep, routing=True, later=True)  # "ready" once the gateways load it:
                    self.batch.on_commit(partial(self.routed.__setitem__, svc.id))
                    self._event(svc, "ready", f"replica {rep.id} is ready", rep.id, later=True)
                elif now - started > float(svc.spec.get("startup_timeout_s", 300)):
                    hint = " (on the local runtime the app must listen on $PORT)" if "nothing listens" in reason else ""
                    limit = float(svc.spec.get("startup_timeout_s", 300))
                    self._fail(svc, rep, f"not ready after {limit:g} s: {reason}{hint}")
                elif reason != rep.last_error and not (rep.restarts and rep.last_error and "nothing listens" in reason):
                    # (a retry that does not listen yet keeps its last failure's words: "exited with code 3")
                    rep.last_error = reason
                    self._save(rep, later=True)
                return
            if ok:
                self.health_failures.pop(rep.id, None)
                if rep.restarts and rep.ready_at and now - rep.ready_at > self.config.stable_after_s:
                    rep.restarts = 0  # ran long enough: a future crash restarts without backoff
                    self._save(rep, later=True)
                return
            count = self.health_failures.get(rep.id, 0) + 1
            self.health_failures[rep.id] = count
            if count >= self.config.failure_threshold:
                self._event(svc, "unhealthy", f"replica {rep.id} failed {count} health checks: {reason}", rep.id,
                            later=True)
                self._fail(svc, rep, f"unhealthy: {reason}")
        elif rep.state in (FAILED, PENDING) and rep.id not in self.stopping and now >= self.restart_at.get(rep.id, 0.0):
            if rep.state == FAILED:
                self._event(svc, "restarted", f"restarting replica {rep.id} (restart #{rep.restarts})", rep.id,
                            later=True)
            self._start(svc, rep)
        elif rep.state == DRAINING and rep.id not in self.stopping:
            note = self._drained(svc, rep, now)
            if note is not None:
                self.stopping.add(rep.id)
                self.stopper.submit(self._finish_drain, svc, rep, note)

    def tick(self, svc: ServiceRow, rows: list[ReplicaRow], infos: dict[str, ReplicaInfo],
             listed_at: float) -> list[ReplicaRow]:
        """One pass over the service; returns its replica rows as the pass left them. A pass that changed
        nothing reads and writes nothing (the rows come from the loop's batched read)."""
        writes = self.writes
        try:
            for rep in rows:
                self.observe(svc, rep, infos.get(rep.id), listed_at)
                if len(self.batch) >= 200:
                    self.batch.flush()  # many replicas turning ready: visible in steps of a hundred
            self.batch.flush()
            if self.writes != writes:
                with self.store.read() as conn:
                    rows = service_store.list_replicas(conn, svc.id)
            desired = Desired(svc.replicas, revision(svc.spec), int(svc.spec.get("max_surge", 1)), svc.deleting,
                              canary_store.desired(svc))
            observed = [Observed(r.id, r.revision, ReplicaState(r.state)) for r in rows]
            p = plan(desired, observed)
            by_id = {r.id: r for r in rows}
            if any(by_id[rid].state == READY for rid in p.drain):  # a ready one goes: the idle ones first
                with self.store.read() as conn:
                    busy = load_store.replicas_inflight(conn, [r.id for r in rows if r.state == READY])
                if busy:
                    p = plan(desired, [replace(o, inflight=busy.get(o.id, 0)) for o in observed])
            for rid in p.drain:
                rep = by_id[rid]
                was_ready = rep.state == READY
                rep.state = DRAINING
                self.drain_since[rid] = time.time()
                if not was_ready:  # never routed to (or crashed, its process stopped): no report to wait for
                    self.drain_clear[rid] = float("-inf")
                self._save(rep, routing=was_ready, later=True)
                self.batch.on_commit(partial(self.drain_target.__setitem__, rid))
                self._event(svc, "draining", f"replica {rid} leaves routing", rid, later=True)
            self.batch.flush()  # the pass's drains in one transaction; each waits for the version after it
            self._start_many(svc, [desired.revision] * p.start + [desired.canary.revision] * p.start_canary
                             if desired.canary else [desired.revision] * p.start)
        finally:
            self.batch.flush()  # what the pass did before an error is written (a start's row, say)
        if p.start or (p.start_canary and desired.canary) or p.drain:
            with self.store.read() as conn:
                rows = service_store.list_replicas(conn, svc.id)
        self._status(svc, rows)
        return rows

    def _status(self, svc: ServiceRow, rows: list[ReplicaRow]) -> None:
        status, reason, message = summarize(svc, rows, self.config)
        if svc.deleting and not rows:
            # while the name is still taken: its unread output first (the local runtime's spools), or a log pump
            # that is behind would write it into the logs of the next service of this name
            spool.discard_service(spool.pump_dir_for(self.data_dir), svc.name)
            remove_service_logs(log_dir_for(self.data_dir), svc.name)
            with self.store.begin() as conn:
                service_store.remove(conn, svc.id)
                event_store.record(conn, svc.name, "deleted", "service deleted")
            return
        if status == "stopped" and svc.status == "pending" and svc.id not in self.routed:
            with self.store.read() as conn:  # a new service at 0 replicas: its endpoint (holding requests for a
                self.routed[svc.id] = version(conn)  # cold start) is there once the gateways listen on its port
        if status in ("ready", "stopped") and svc.id in self.routed:
            with self.store.read() as conn:  # ready means callable: every live gateway worker routes to it
                if not gateways_caught_up(conn, self.routed[svc.id], self.config.gateway_fresh_s):
                    return  # still busy (schedule.busy): looked at again on the next pass
            del self.routed[svc.id]
        if (status, reason, message) != (svc.status, svc.reason, svc.message):
            with self.store.begin() as conn:
                service_store.set_status(conn, svc.id, status, reason, message)
