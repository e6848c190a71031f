"""Pure metering: amounts from replica-seconds, and one meter pass planned from what the store holds.

No I/O here (the shell is :mod:`arkserve.billing.meter`). The rounding rule, written once:

* a run segment (one replica run, billed one way) is measured in whole seconds from its start;
* it costs ``round_half_up(price_micro_per_hour * max(seconds, 60) / 3600)`` micro-units once it has at least
  one second (a one-minute minimum per segment), computed on the segment's *total* seconds every pass, so the
  ledger entries of a segment always add up to exactly that figure — no drift, however many passes;
* prepaid segments cost 0 (the instance was paid for in advance) but their seconds are recorded all the same.

A run's billing can change while it runs (a prepaid instance expires: :func:`demote`; one becomes free or is
bought: :func:`promote`), back and forth: each stretch is its own segment, keyed ``payg``/``prepaid`` the first
time and ``payg#2``, ``prepaid#2``… after (:func:`segment_key`); ledger entries carry the mode alone.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

MICRO = 1_000_000
MINIMUM_S = 60
RUNNING = frozenset({"starting", "ready", "draining"})
PAYG, PREPAID = "payg", "prepaid"


def to_micro(amount: float) -> int:
    """Currency units -> integer micro-units (half away from zero)."""
    scaled = abs(amount) * MICRO
    whole = math.floor(scaled + 0.5)
    return whole if amount >= 0 else -whole


def from_micro(micro: int) -> float:
    return micro / MICRO


def mode_of(key: str) -> str:
    """A segment's billing key -> its mode: ``"prepaid#2"`` -> ``"prepaid"``."""
    return key.split("#", 1)[0]


def segment_key(mode: str, taken: Collection[str]) -> str:
    """The billing key of a run's next segment billed ``mode``, given the keys its segments already have: the mode
    itself the first time, then ``mode#2``, ``mode#3``…"""
    if mode not in taken:
        return mode
    n = 2
    while f"{mode}#{n}" in taken:
        n += 1
    return f"{mode}#{n}"


def amount_for(seconds: int, price_micro_per_hour: int) -> int:
    """What ``seconds`` of one segment cost in total (the one-minute minimum included)."""
    if seconds <= 0 or price_micro_per_hour <= 0:
        return 0
    return (price_micro_per_hour * max(seconds, MINIMUM_S) + 1800) // 3600


@dataclass(frozen=True)
class Observed:
    """A replica row as the meter sees it in the store."""

    replica_id: str
    started_at: float
    user_id: int
    service: str
    instance_type: str
    billing: str  # what placement chose: payg | prepaid
    price_micro_per_hour: int
    running: bool  # in a running state (starting/ready/draining)
    ended_at: float | None = None  # for a row no longer running: when it stopped (its updated_at)
    final: bool = False  # a deleted row's stop (billing_stops): ended_at is exact, bill it even if never seen
    spec_billing: str = "auto"  # the service's choice (auto | prepaid | payg): payg runs are never promoted


@dataclass(frozen=True)
class Segment:
    """A ``billing_runs`` row."""

    replica_id: str
    started_at: float
    billing: str  # the key: payg | prepaid, then payg#2 | prepaid#2 … (segment_key)
    user_id: int
    service: str
    instance_type: str
    price_micro_per_hour: int
    from_at: float
    seconds: int
    amount_micro: int
    ended: bool = False

    @property
    def key(self) -> tuple[str, float, str]:
        return self.replica_id, self.started_at, self.billing

    @property
    def covered_until(self) -> float:
        return self.from_at + self.seconds

    @property
    def mode(self) -> str:
        return mode_of(self.billing)


@dataclass(frozen=True)
class Charge:
    """One ledger entry: the seconds a pass newly covered for a segment, and what they cost."""

    segment: Segment  # the segment after this pass
    seconds: int
    amount_micro: int
    period_start: float
    period_end: float


@dataclass(frozen=True)
class Plan:
    """What one pass writes: segments to upsert (with their charge, if any) and segments to close."""

    upserts: list[tuple[Segment, Charge | None]]
    closed: list[Segment]


def _extend(seg: Segment, until: float) -> tuple[Segment, Charge | None]:
    seconds = max(seg.seconds, math.floor(until - seg.from_at))
    if seconds == seg.seconds:
        return seg, None
    total = amount_for(seconds, seg.price_micro_per_hour)
    new = replace(seg, seconds=seconds, amount_micro=total)
    return new, Charge(new, seconds - seg.seconds, total - seg.amount_micro, seg.covered_until, new.covered_until)


def as_of(observed: Iterable[Observed], at: float) -> list[Observed]:
    """The runs as they were at ``at`` (a pass up to a past instant, a prepaid end): one that stopped after it was
    running then, billed to ``at`` and left open (its stop record kept) for the pass that reaches its stop."""
    return [replace(o, running=True, ended_at=None, final=False)
            if not o.running and o.ended_at is not None and o.ended_at > at else o for o in observed]


def demote(observed: Iterable[Observed], reserved: Mapping[tuple[int, str], int]) -> list[Observed]:
    """Runs placed as prepaid beyond the owner's active prepaid instances (one expired) are billed as payg.

    The oldest runs keep the prepaid instances (stable across passes)."""
    out: list[Observed] = []
    used: dict[tuple[int, str], int] = {}
    for o in sorted(observed, key=lambda o: (o.started_at, o.replica_id)):
        if o.billing == "prepaid" and o.running:
            k = (o.user_id, o.instance_type)
            used[k] = used.get(k, 0) + 1
            if used[k] > reserved.get(k, 0):
                o = replace(o, billing="payg")
        out.append(o)
    return out


def promote(observed: Iterable[Observed], reserved: Mapping[tuple[int, str], int],
            placed: Mapping[tuple[int, str], int] | None = None) -> list[Observed]:
    """The mirror of :func:`demote` (call it after): running pay-as-you-go runs move onto their owner's free prepaid
    instances of their type, the oldest first (a rolling update's new replica, placed while the old one held the
    instance; a run demoted at an expiry when its owner buys another instance).

    Free is ``reserved`` less the runs billed prepaid and less ``placed``: replicas placement put on a prepaid
    instance that do not run yet. Runs of services that chose ``billing: payg`` stay pay-as-you-go."""
    observed = sorted(observed, key=lambda o: (o.started_at, o.replica_id))
    free = {k: n - (placed or {}).get(k, 0) for k, n in reserved.items()}
    for o in observed:
        if o.billing == PREPAID and o.running:
            k = (o.user_id, o.instance_type)
            free[k] = free.get(k, 0) - 1
    out: list[Observed] = []
    for o in observed:
        k = (o.user_id, o.instance_type)
        if o.billing == PAYG and o.running and o.spec_billing != PAYG and free.get(k, 0) > 0:
            free[k] -= 1
            o = replace(o, billing=PREPAID)
        out.append(o)
    return out


def plan_pass(now: float, observed: Iterable[Observed], open_segments: Iterable[Segment],
              closed_segments: Iterable[Segment] = ()) -> Plan:
    """Extend every observed run's segment to ``now`` (a stopped row: to when it stopped) and close the rest.

    A run seen for the first time starts a segment at its ``started_at`` (the seconds before the meter saw it,
    e.g. while the reconciler was down, are billed too). A running run whose billing changed (demoted, promoted)
    closes its open segment and opens a new one (:func:`segment_key`) where the run's segments end; a stopped
    run ends the way it was billed. Open segments whose run is gone (row deleted without a stop record,
    ``started_at`` changed) are closed at what they covered: up to its last look. A deleted row's stop record
    (``final``) bills its run to the instant it stopped, seen before or not. ``closed_segments``: the closed
    segments of the runs observed (their keys are taken; their seconds are billed)."""
    segments = {s.key: s for s in open_segments}
    by_run: dict[tuple[str, float], list[Segment]] = {}
    for s in [*segments.values(), *closed_segments]:
        by_run.setdefault((s.replica_id, s.started_at), []).append(s)
    upserts: list[tuple[Segment, Charge | None]] = []
    touched: set[tuple[str, float, str]] = set()
    for o in observed:
        until = now if o.running else min(now, o.ended_at if o.ended_at is not None else now)
        mine = by_run.get((o.replica_id, o.started_at), [])
        current = max((s for s in mine if s.key in segments), key=lambda s: s.covered_until, default=None)
        if current is not None and (current.mode == o.billing or not o.running):
            seg = current
        elif current is None and not o.running and (mine or not o.final):
            continue  # already closed; or a row stopped before the meter saw it, whose end is not exact
        else:  # first sight, or its billing changed: a new segment from where the run's seconds are billed to
            start = max([s.covered_until for s in mine], default=o.started_at)
            price = 0 if o.billing != PAYG else next(  # the price when the run was first billed payg
                (s.price_micro_per_hour for s in sorted(mine, key=lambda s: s.from_at) if s.mode == PAYG),
                o.price_micro_per_hour)
            seg = Segment(o.replica_id, o.started_at, segment_key(o.billing, {s.billing for s in mine}), o.user_id,
                          o.service, o.instance_type, price, start, 0, 0)
        touched.add(seg.key)
        new, charge = _extend(seg, until)
        if not o.running:
            new = replace(new, ended=True)
        if charge is not None or new != segments.get(seg.key):
            upserts.append((new, charge))
    closed = [replace(s, ended=True) for k, s in segments.items() if k not in touched]
    return Plan(upserts, closed)
