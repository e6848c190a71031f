"""Autoscaling decisions, pure: a service's policy, its recent load, and how many replicas it should have.

The model is Knative's (and Ray Serve's): the metric is the number of requests in flight (being served or waiting
in a gateway queue) per replica, against a ``target``. Load samples are averaged over two windows:

* the *stable* window (default 60 s) sets the replica count in normal operation;
* the *panic* window (default 6 s) reacts to bursts: when it asks for at least twice the replicas there are, the
  service enters panic mode for one stable window, during which it scales up on the panic average and never down.

Scaling in waits ``scale_in_delay_s`` (default 5 min): the count drops only to the highest count recommended over
that period. ``min`` and ``max`` bound everything; with ``min == 0`` a service with no load for ``idle_to_zero_s``
(default 10 min) goes to 0, and any load at 0 replicas brings it back at once (the gateway holds the requests up to
``cold_start_timeout_s``). :class:`History` is the little state kept between decisions; :func:`decide` is the rule.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PANIC_FACTOR = 2.0  # the panic window asks for this many times the replicas there are: panic


@dataclass(frozen=True)
class Policy:
    """A service's ``autoscale`` setting (times in seconds)."""

    min: int = 0
    max: int = 8
    target: float = 4.0  # requests in flight per replica
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    scale_in_delay_s: float = 300.0
    idle_to_zero_s: float = 600.0
    cold_start_timeout_s: float = 120.0

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Policy | None:
        """The policy of a service spec's ``autoscale`` (``None``: the service is scaled by hand)."""
        raw = spec.get("autoscale")
        if not raw:
            return None
        known = {k: raw[k] for k in cls.__dataclass_fields__ if raw.get(k) is not None}
        return cls(**known)


@dataclass
class History:
    """What the decider remembers of one service: load samples, recent recommendations, when it was last busy."""

    since: float  # when watching began: no scale-in and no scale to zero before a full delay/idle period of it
    last_active: float = -math.inf  # last sample with load > 0
    panic_until: float = -math.inf
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (time, requests in flight), oldest first
    recommended: deque[tuple[float, int]] = field(default_factory=deque)  # (time, replicas) within the delay

    def observe(self, now: float, load: float, policy: Policy) -> None:
        """Add a sample (the sum over every gateway worker of in-flight plus queued requests)."""
        self.samples.append((now, load))
        if load > 0:
            self.last_active = now
        keep = max(policy.stable_window_s, policy.panic_window_s)
        while self.samples and self.samples[0][0] <= now - keep:
            self.samples.popleft()

    def average(self, now: float, window_s: float) -> float:
        values = [v for t, v in self.samples if t > now - window_s]
        return sum(values) / len(values) if values else 0.0

    @property
    def latest(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str  # says which metric caused it; "" when nothing changes

    @property
    def changed(self) -> bool:
        return bool(self.reason)


def _fmt(x: float) -> str:
    """Up to two decimals (so that 25.04 over a target of 25 does not read as 25)."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def decide(policy: Policy, history: History, current: int, now: float) -> Decision:
    """The replica count for a service that has ``current`` now (the samples up to ``now`` already observed)."""
    lo, hi = policy.min, max(policy.min, policy.max)
    target = max(policy.target, 1e-9)
    load = history.latest
    if current == 0:
        if load > 0 and hi > 0:  # woken: start at once, as many as the waiting requests need
            n = min(hi, max(1, lo, math.ceil(load / target)))
            return Decision(n, f"scaled 0→{n}: {_fmt(load)} request(s) waiting at 0 replicas")
        if lo > 0:
            return Decision(lo, f"scaled 0→{lo}: below the minimum {lo}")
        return Decision(0, "")
    stable = history.average(now, policy.stable_window_s)
    panic = history.average(now, policy.panic_window_s)
    want_stable, want_panic = math.ceil(stable / target), math.ceil(panic / target)
    per = panic / current
    if want_panic >= PANIC_FACTOR * current and want_panic > current:
        history.panic_until = now + policy.stable_window_s
    panicking = now < history.panic_until
    if panicking:
        want, why = max(current, want_panic), (f"(panic) {_fmt(per)} in flight per replica over the last "
                                               f"{_fmt(policy.panic_window_s)} s")
    else:
        per = stable / current
        want, why = want_stable, f"{_fmt(per)} in flight per replica"
    history.recommended.append((now, want))
    while history.recommended and history.recommended[0][0] <= now - policy.scale_in_delay_s:
        history.recommended.popleft()
    idle_for = now - max(history.last_active, history.since)
    if lo == 0 and idle_for >= policy.idle_to_zero_s and not panicking:
        return Decision(0, f"scaled {current}→0: no request for {_fmt(idle_for)} s "
                           f"(idle to zero after {_fmt(policy.idle_to_zero_s)} s)")
    floor = max(lo, 1)  # not idle long enough for zero
    if want < current:
        if now - history.since < policy.scale_in_delay_s:
            want = current  # just started watching: no history that proves the load stayed low
        else:
            want = max([want, *(n for _, n in history.recommended)])
    n = min(hi, max(floor, want))
    if n == current:
        return Decision(current, "")
    if current < lo or current > hi:
        return Decision(n, f"scaled {current}→{n}: outside the bounds {lo}-{hi}")
    if n > current:
        bound = f" (max {hi})" if n == hi and want > hi else ""
        return Decision(n, f"scaled {current}→{n}: {why} > target {_fmt(policy.target)}{bound}")
    if want < floor:
        return Decision(n, f"scaled {current}→{n}: {why} < target {_fmt(policy.target)} (min {floor})")
    return Decision(n, f"scaled {current}→{n}: {why} < target {_fmt(policy.target)} "
                       f"for {_fmt(policy.scale_in_delay_s)} s")
