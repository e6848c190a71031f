"""The autoscaler's shell: reads the gateways' load reports, asks the pure rule (``domain/autoscaling.py``) and
writes the replica count of each autoscaled service through the store, with an event quoting the metric.

The reconciler loop hands it every service the change feed names (:meth:`Autoscaler.observe`: that is how it
learns which services are autoscaled, and how a gateway's wake of a service at 0 replicas reaches it within one
pass) and calls :meth:`Autoscaler.step` on every pass; a step reads the load (one grouped query) at most every
``every_s``, or at once after a wake. Every ``reload_s`` it re-reads the autoscaled services in full (a safety net
for what the feed could not say, e.g. a removal) and prunes old load rows. A service's load is what the gateways
report in flight and queued, plus its asynchronous requests still waiting in the store's queue (those being sent
are in flight at a gateway already). Growth goes through ``admit`` (quotas and
balances, injected by ``arkserve reconciler``); a refusal is an event, once per refused count, and the count grows
as far as admission allows (it stays when that is not at all).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from sqlalchemy import Connection

from arkserve.domain.autoscaling import Decision, History, Policy, decide
from arkserve.errors import ArkserveError
from arkserve.store import async_requests as async_store
from arkserve.store import events as event_store
from arkserve.store import load as load_store
from arkserve.store import services as service_store
from arkserve.store.db import Store
from arkserve.store.services import ServiceRow

log = logging.getLogger("arkserve.reconciler.autoscaler")
Admit = Callable[[Connection, ServiceRow, int], None]  # raises (403/402) when the owner may not grow to N replicas


class Autoscaler:
    def __init__(self, store: Store, *, every_s: float = 0.25, reload_s: float = 30.0, admit: Admit | None = None,
                 fresh_s: float = load_store.FRESH_S) -> None:
        self.store, self.every_s, self.reload_s, self.admit, self.fresh_s = store, every_s, reload_s, admit, fresh_s
        self.services: dict[int, ServiceRow] = {}  # the autoscaled ones, as last seen
        self.policies: dict[int, Policy] = {}
        self.histories: dict[int, History] = {}
        self.refused: dict[int, int] = {}  # service -> the count admission refused (one event per refusal)
        self.next_at = 0.0
        self.reload_at = 0.0
        self.woken = False

    # ------------------------------------------------------------------------------ what is autoscaled
    def observe(self, rows: Iterable[ServiceRow]) -> None:
        """Services whose desired state, status or replicas moved (the change feed)."""
        for svc in rows:
            policy = None if svc.deleting else Policy.from_spec(svc.spec)
            if policy is None:
                self._forget(svc.id)
                continue
            self.services[svc.id], self.policies[svc.id] = svc, policy
            if svc.replicas == 0:  # a gateway may have woken it: look at the load now
                self.woken = True

    def _forget(self, service_id: int) -> None:
        for d in (self.services, self.policies, self.histories, self.refused):
            d.pop(service_id, None)

    def _reload(self) -> None:
        with self.store.begin() as conn:
            rows = service_store.list_all(conn)
            load_store.prune(conn)
        live = {s.id for s in rows}
        for sid in list(self.services):
            if sid not in live:
                self._forget(sid)
        self.observe(rows)

    # ------------------------------------------------------------------------------ deciding
    def step(self, now: float | None = None) -> set[int]:
        """Decide for every autoscaled service when due; returns the ids of the services whose count it changed."""
        mono = time.monotonic() if now is None else now
        if mono >= self.reload_at:
            self.reload_at = mono + self.reload_s
            self._reload()
        if not self.services or (not self.woken and mono < self.next_at):
            return set()
        self.next_at, self.woken = mono + self.every_s, False
        with self.store.read() as conn:
            loads = load_store.totals(conn, self.fresh_s)
            backlog = async_store.queue_depth(conn)
        t = time.time()
        taken = set()
        for sid, svc in list(self.services.items()):
            policy = self.policies[sid]
            history = self.histories.get(sid)
            if history is None:
                history = self.histories[sid] = History(since=t)
            waiting = backlog.get(svc.name, {}).get(async_store.QUEUED, 0)
            history.observe(t, float(loads.get(svc.name, 0) + waiting), policy)
            decision = decide(policy, history, svc.replicas, t)
            if decision.changed and self._apply(svc, decision):
                taken.add(sid)
        return taken

    def _apply(self, svc: ServiceRow, d: Decision) -> bool:
        with self.store.begin() as conn:
            fresh = service_store.find(conn, svc.name)
            if fresh is None or fresh.id != svc.id or fresh.deleting or Policy.from_spec(fresh.spec) is None:
                self._forget(svc.id)
                return False
            if fresh.replicas != svc.replicas:  # changed meanwhile: decide again on the next step
                self.services[svc.id] = fresh
                return False
            refusal = None
            if d.replicas > fresh.replicas and self.admit is not None:
                n, refusal = self._admitted(conn, fresh, d.replicas)
                if refusal is not None:
                    if self.refused.get(svc.id) != d.replicas:
                        self.refused[svc.id] = d.replicas
                        grown = f"; scaling to {n}, as far as admission allows" if n > fresh.replicas else ""
                        event_store.record(conn, fresh.name, "autoscale-refused",
                                           f"cannot scale {fresh.replicas}→{d.replicas}: {refusal.message}{grown}")
                    if n == fresh.replicas:
                        return False
                    d = Decision(n, f"scaled {fresh.replicas}→{n} of the {d.replicas} asked "
                                    f"({d.reason.partition(': ')[2]}): admission allows no more")
            if refusal is None:
                self.refused.pop(svc.id, None)
            service_store.update_desired(conn, fresh, replica_count=d.replicas)
            event_store.record(conn, fresh.name, "autoscaled", d.reason)
        self.services[svc.id] = replace(fresh, replicas=d.replicas)
        log.info("%s: %s", svc.name, d.reason)
        return True

    def _admitted(self, conn: Connection, svc: ServiceRow, want: int) -> tuple[int, ArkserveError | None]:
        """The largest count up to ``want`` that admission allows, and why ``want`` itself was refused (None: it was
        not). A quota or balance refused for ``want`` replicas may still allow some: a service at 0 with requests
        waiting must not stay at 0 because it asked for 3 where 1 was allowed. Admission only grows stricter with
        the count, so a binary search between the current count and ``want`` finds it in a few checks."""
        assert self.admit is not None
        try:
            self.admit(conn, svc, want)
            return want, None
        except ArkserveError as exc:
            refusal = exc
        lo, hi = svc.replicas, want - 1  # lo: allowed (the service has it now)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            try:
                self.admit(conn, svc, mid)
                lo = mid
            except ArkserveError:
                hi = mid - 1
        return lo, refusal
