"""Pure metering: amounts from replica-seconds, and one meter pass planned from what the store holds.

No I/O here (the shell is :mod:`arkserve.billing.meter`). The rounding rule, written once:

* a run segment (one replica run, billed one way) is measured in whole seconds from its start;
* it costs ``round_half_up(price_micro_per_hour * max(seconds, 60) / 3600)`` micro-units once it has at least
  one second (a one-minute minimum per segment), computed on the segment's *total* seconds every pass, so the
  ledger entries of a segment always add up to exactly that figure — no drift, however many passes;
* prepaid segments cost 0 (the instance was paid for in advance) but their seconds are recorded all the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

MICRO = 1_000_000
MINIMUM_S = 60
RUNNING = frozenset({"starting", "ready", "draining"})


def to_micro(amount: float) -> int:
    """Currency units -> integer micro-units (half away from zero)."""
    scaled = abs(amount) * MICRO
    whole = math.floor(scaled + 0.5)
    return whole if amount >= 0 else -whole


def from_micro(micro: int) -> float:
    return micro / MICRO


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


@dataclass(frozen=True)
class Segment:
    """A ``billing_runs`` row."""

    replica_id: str
    started_at: float
    billing: str
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


def plan_pass(now: float, observed: Iterable[Observed], open_segments: Iterable[Segment],
              closed_keys: frozenset[tuple[str, float, str]] = frozenset()) -> Plan:
    """Extend every observed run's segment to ``now`` (a stopped row: to when it stopped) and close the rest.

    A run seen for the first time starts a segment at its ``started_at`` (the seconds before the meter saw it,
    e.g. while the reconciler was down, are billed too). A run whose billing changed (a prepaid instance expired)
    closes its old segment and opens a new one where the old one ends. Open segments whose run is gone (row
    deleted without a stop record, ``started_at`` changed) are closed at what they covered: up to its last look.
    A deleted row's stop record (``final``) bills its run to the instant it stopped, seen before or not."""
    segments = {s.key: s for s in open_segments}
    by_run: dict[tuple[str, float], list[Segment]] = {}
    for s in segments.values():
        by_run.setdefault((s.replica_id, s.started_at), []).append(s)
    upserts: list[tuple[Segment, Charge | None]] = []
    touched: set[tuple[str, float, str]] = set()
    for o in observed:
        until = now if o.running else min(now, o.ended_at if o.ended_at is not None else now)
        key = (o.replica_id, o.started_at, o.billing)
        seg = segments.get(key)
        if seg is None and key in closed_keys:  # billed that way before, then switched: stay on the open segment
            current = by_run.get((o.replica_id, o.started_at), [])
            if current:
                seg, key = current[0], current[0].key
        if seg is None:
            if not o.running and (key in closed_keys if o.final else not by_run.get((o.replica_id, o.started_at))):
                continue  # already closed; or a row stopped before the meter saw it, whose end is not exact
            previous = by_run.get((o.replica_id, o.started_at), [])
            start = max([p.covered_until for p in previous], default=o.started_at)
            price = o.price_micro_per_hour if o.billing == "payg" else 0
            seg = Segment(o.replica_id, o.started_at, o.billing, o.user_id, o.service, o.instance_type, price,
                          start, 0, 0)
        touched.add(key)
        new, charge = _extend(seg, until)
        if not o.running:
            new = replace(new, ended=True)
        if charge is not None or new != segments.get(key):
            upserts.append((new, charge))
    closed = [replace(s, ended=True) for k, s in segments.items() if k not in touched]
    return Plan(upserts, closed)
