"""Which services a reconciler pass acts on besides the changed ones: the busy, the due for a probe, a resync slice.

After each pass of a service the loop tells the :class:`Schedule` what the service looked like (:meth:`note`):

* *busy* (replicas starting, draining, failed or pending; fewer or more replicas than desired; another revision;
  being deleted; all ready but the status not yet, or new at 0 replicas and still ``pending``, while the gateways
  load its routes): acted on every pass, as
  it moves by itself (a probe turns it ready, a backoff runs out);
* *serving* (only ready replicas): its replicas are probed, and checked against the runtime, every ``interval_s``;
* *steady* (nothing to run): only a change in the store, or the resync, brings it back.

The resync reconciles every service once per ``resync_s``, spread evenly over the period (a slice per pass), as
the safety net for anything the change feed could not see; a slice is taken at most every ``slice_s`` (one
batched read for many services rather than a small one on every pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from arkserve.domain.canary import canary_replicas
from arkserve.domain.planning import ReplicaState
from arkserve.domain.services import revision
from arkserve.store.canary import split_rows as canary_split
from arkserve.store.services import ReplicaRow, ServiceRow

MOVING = frozenset({ReplicaState.STARTING.value, ReplicaState.DRAINING.value, ReplicaState.FAILED.value,
                    ReplicaState.PENDING.value})


def busy(svc: ServiceRow, rows: list[ReplicaRow]) -> bool:
    """True while the service's replicas still move by themselves or differ from what it asks for."""
    rows, canary = canary_split(svc, rows)  # a canary's replicas are counted apart (docs/canary.md)
    if svc.canary_spec and (len(canary) != canary_replicas(svc.replicas, svc.canary_weight)
                   or any(r.state in MOVING for r in canary)):
        return True
    if svc.deleting or len(rows) != svc.replicas or any(r.state in MOVING for r in rows):
        return True
    if (rows and svc.status != "ready") or svc.status == "pending":  # the status waits for the gateways
        return True  # (worker._status): all ready and not yet "ready", or new and not yet "stopped"
    rev = revision(svc.spec)
    return any(r.revision != rev for r in rows)


class Schedule:
    def __init__(self, interval_s: float, resync_s: float, slice_s: float = 1.0) -> None:
        self.interval_s, self.resync_s, self.slice_s = interval_s, resync_s, slice_s
        self.slice_at = -math.inf
        self.busy: set[int] = set()
        self.probe_at: dict[int, float] = {}  # serving services: when (monotonic) to look at them next
        self.cycle: list[int] = []  # this resync period's services, and how far the slices got
        self.cycle_pos = 0
        self.cycle_start = -math.inf

    def note(self, svc: ServiceRow, rows: list[ReplicaRow], now: float) -> None:
        """The service was just reconciled and ended with ``rows``."""
        if busy(svc, rows):
            self.busy.add(svc.id)
            self.probe_at.pop(svc.id, None)
            return
        self.busy.discard(svc.id)
        if rows:
            self.probe_at[svc.id] = now + self.interval_s
        else:
            self.probe_at.pop(svc.id, None)

    def retry(self, service_id: int, now: float) -> None:
        """Its pass failed (logged): try again after ``interval_s``, not on every pass."""
        self.busy.discard(service_id)
        self.probe_at[service_id] = now + self.interval_s

    def forget(self, service_id: int) -> None:
        self.busy.discard(service_id)
        self.probe_at.pop(service_id, None)

    def cycle_over(self, now: float) -> bool:
        """True when a new resync period starts: the caller lists every service id for :meth:`start_cycle`."""
        return now - self.cycle_start >= self.resync_s and self.cycle_pos >= len(self.cycle)

    def start_cycle(self, ids: Iterable[int], now: float, *, done: bool = False) -> None:
        """A new resync period over ``ids``; ``done``: they are all being reconciled now (the first pass)."""
        self.cycle, self.cycle_start = list(ids), now
        self.cycle_pos = len(self.cycle) if done else 0

    def due(self, now: float) -> set[int]:
        """Services to reconcile in this pass (besides the changed ones): busy, due a probe, this pass's slice."""
        out = set(self.busy)
        out.update(sid for sid, at in self.probe_at.items() if at <= now)
        if now - self.slice_at < self.slice_s:
            return out
        share = min(1.0, (now - self.cycle_start) / self.resync_s) if self.resync_s > 0 else 1.0
        until = math.ceil(len(self.cycle) * share)
        if until > self.cycle_pos:
            out.update(self.cycle[self.cycle_pos:until])
            self.cycle_pos, self.slice_at = until, now
        return out
