"""Pure planning: from desired state and the replicas that exist, which to start and which to drain.

Scaling, rolling updates (surge one, or replace in place with ``max_surge=0``) and deletion are
all the same computation. Invariants:

- never drain an old-revision replica unless enough new-revision replicas are *ready* to replace it
  (``max_surge=0`` deliberately gives up one replica of capacity to make room, also for a new replica already
  waiting as pending, e.g. a surge replica with no room on a full host);
- never start a second new-revision replica while one is still starting, so a new version that
  never becomes ready stalls the rollout with the old replicas still serving;
- when there is a choice, drain the replicas that are not serving (pending, starting, failed) first, then the
  ready ones with the fewest requests in flight (``Observed.inflight``, as the gateways report it: an idle one
  stops at once, a busy one drains until its requests end), then the newest.

A canary (``Desired.canary``, docs/canary.md) is a second revision planned apart: its replicas are scaled to its
own count (``Plan.start_canary``) and never counted for the stable revision, whose rollout is planned on the
other replicas exactly as without one. Promoting makes the canary's revision the desired one (a rolling update
that already has some new replicas ready); rolling back drops it, and its replicas are old ones to drain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum


class ReplicaState(StrEnum):
    PENDING = "pending"  # recorded, not started yet (or waiting for capacity)
    STARTING = "starting"  # running, not yet passing readiness
    READY = "ready"  # in routing
    DRAINING = "draining"  # out of routing, about to be stopped
    STOPPED = "stopped"
    FAILED = "failed"  # exited, crashed or never became ready; restarted with backoff


@dataclass(frozen=True)
class Observed:
    id: str
    revision: str
    state: ReplicaState
    inflight: int = 0  # requests in flight on it, as the gateways last reported (0: idle, or not asked)


@dataclass(frozen=True)
class Canary:
    revision: str
    replicas: int


@dataclass(frozen=True)
class Desired:
    replicas: int
    revision: str
    max_surge: int = 1
    deleting: bool = False
    canary: Canary | None = None  # a second revision served beside this one (docs/canary.md)


@dataclass(frozen=True)
class Plan:
    start: int = 0
    drain: tuple[str, ...] = ()
    start_canary: int = 0  # replicas of the canary's revision to start


def _serving_last(reps: Sequence[Observed]) -> list[Observed]:
    """Non-ready first, then the fewest requests in flight, newest first among equals (``reps`` come oldest
    first)."""
    return sorted(reversed(reps), key=lambda r: (r.state == ReplicaState.READY, r.inflight))


def plan(desired: Desired, observed: Sequence[Observed]) -> Plan:
    """``observed`` lists the service's replicas oldest first."""
    canary = desired.canary
    if canary is not None and not desired.deleting and canary.revision != desired.revision:
        stable = plan(replace(desired, canary=None), [r for r in observed if r.revision != canary.revision])
        mine = plan(Desired(canary.replicas, canary.revision), [r for r in observed if r.revision == canary.revision])
        return Plan(start=stable.start, drain=stable.drain + mine.drain, start_canary=mine.start)
    active = [r for r in observed if r.state not in (ReplicaState.DRAINING, ReplicaState.STOPPED)]
    if desired.deleting:
        return Plan(drain=tuple(r.id for r in active))
    new = [r for r in active if r.revision == desired.revision]
    old = [r for r in active if r.revision != desired.revision]
    drain: list[str] = []
    if len(new) > desired.replicas:  # scale down the new revision
        extra = _serving_last(new)[: len(new) - desired.replicas]
        drain += [r.id for r in extra]
        new = [r for r in new if r.id not in drain]
    if not old:
        return Plan(start=max(0, desired.replicas - len(new)), drain=tuple(drain))
    ready_new = sum(1 for r in new if r.state == ReplicaState.READY)
    keep_old = max(0, desired.replicas - ready_new)
    victims = _serving_last(old)[: max(0, len(old) - keep_old)]
    drain += [r.id for r in victims]
    remaining = len(new) + len(old) - len(victims)
    start = 0
    if len(new) < desired.replicas and ready_new == len(new):  # nothing new in flight
        if remaining < desired.replicas + desired.max_surge:
            start = 1
        elif desired.max_surge == 0:  # in place: free one slot now, start on the next pass
            survivors = [r for r in _serving_last(old) if r.id not in drain]
            if survivors:
                drain.append(survivors[0].id)
    elif desired.max_surge == 0 and remaining > desired.replicas and any(r.state == ReplicaState.PENDING
                                                                         for r in new):
        # in place, with a new replica already waiting for room (a surge replica from before max_surge was set
        # to 0, Unschedulable on a full host or without a free prepaid instance): free the room it waits for
        survivors = [r for r in _serving_last(old) if r.id not in drain]
        if survivors:
            drain.append(survivors[0].id)
    return Plan(start=start, drain=tuple(drain))
