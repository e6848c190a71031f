"""Table-driven tests of the pure autoscaling decision: windows, panic, scale-in delay, idle to zero, bounds."""

from __future__ import annotations

import pytest

from arkserve.domain.autoscaling import History, Policy, decide

P = Policy(min=0, max=8, target=4, stable_window_s=60, panic_window_s=6, scale_in_delay_s=300, idle_to_zero_s=600)


def run(policy: Policy, current: int, loads: list[tuple[float, float]], *, since: float = -10_000.0) -> tuple[int, str]:
    """Feed (time, load) samples, deciding after each (as the reconciler does) with ``current`` replicas; the last
    decision is the answer."""
    h = History(since=since)
    d = None
    for t, load in loads:
        h.observe(t, load, policy)
        d = decide(policy, h, current, t)
    assert d is not None
    return d.replicas, d.reason


def steady(load: float, until: float = 0.0, span: float = 60.0, step: float = 1.0) -> list[tuple[float, float]]:
    n = int(span / step)
    return [(until - span + (i + 1) * step, load) for i in range(n)]


CASES = [
    # name, policy, current, samples, expected replicas, words the reason must contain
    ("at zero, no load: stays", P, 0, [(0.0, 0.0)], 0, ""),
    ("at zero, one waiting request wakes one replica", P, 0, [(0.0, 1.0)], 1, "0→1"),
    ("at zero, 50 waiting start as many as the target asks (max 8)", P, 0, [(0.0, 50.0)], 8, "50 request(s) waiting"),
    ("at zero, min 2 starts two", Policy(min=2, max=8), 0, [(0.0, 0.0)], 2, "minimum 2"),
    ("steady at target: no change", P, 2, steady(8.0), 2, ""),
    ("stable window over target scales up", P, 3, steady(17.4), 5, "3→5: 5.8 in flight per replica > target 4"),
    ("scale up capped at max", P, 2, steady(100.0), 8, "(max 8)"),
    ("a burst in the panic window: panic, scale on the 6 s average",
     P, 2, steady(4.0, until=-6.0, span=54.0) + [(float(t), 40.0) for t in range(-5, 1)], 10 if P.max >= 10 else 8,
     "(panic)"),
    ("a short burst that does not double: the stable window rules", P, 4, steady(16.0, until=-6, span=54)
     + [(float(t), 24.0) for t in range(-5, 1)], 5, "in flight per replica > target 4"),
    ("low load, but not for the whole scale-in delay: stays", P, 4,
     steady(16.0, until=-120, span=240) + steady(4.0, until=0, span=120), 4, ""),
    ("low load for the whole delay: scales in", P, 4, steady(4.0, until=0, span=400), 1, "4→1"),
    ("scale in stops at min", Policy(min=2, max=8, scale_in_delay_s=60), 4, steady(1.0, span=120), 2, "(min 2)"),
    ("idle less than idle_to_zero: keeps one", P, 1, [(-400.0, 1.0), *steady(0.0, span=399)], 1, ""),
    ("idle for idle_to_zero: to zero", P, 1, [(-700.0, 1.0), *steady(0.0, span=699)], 0,
     "no request for 700 s (idle to zero after 600 s)"),
    ("idle but min 1: keeps one", Policy(min=1, idle_to_zero_s=10, scale_in_delay_s=10), 1, steady(0.0, span=50), 1,
     ""),
    ("above max after max was lowered: down to max", Policy(min=0, max=2), 5, steady(40.0), 2, "outside the bounds"),
]


@pytest.mark.parametrize(("name", "policy", "current", "samples", "want", "words"), CASES, ids=[c[0] for c in CASES])
def test_decide(name: str, policy: Policy, current: int, samples: list[tuple[float, float]], want: int,
                words: str) -> None:
    got, reason = run(policy, current, samples)
    assert got == want, reason
    assert (words in reason) if words else reason == ""


def test_no_scale_in_right_after_watching_begins() -> None:
    """A restarted reconciler has no history: it does not scale in (or to zero) until it has a full period."""
    got, _ = run(P, 4, steady(0.0, span=30), since=-30.0)
    assert got == 4


def test_panic_holds_for_a_stable_window_and_never_scales_down() -> None:
    policy = Policy(min=0, max=20, target=1, stable_window_s=60, panic_window_s=6, scale_in_delay_s=0)
    h = History(since=-1000.0)
    for t in range(-60, 0):
        h.observe(float(t), 1.0, policy)
    for t in range(0, 6):
        h.observe(float(t), 10.0, policy)
    d = decide(policy, h, 1, 5.0)
    assert d.replicas == 10 and "(panic)" in d.reason
    for t in range(6, 30):  # the burst is over: still in panic for a stable window, so no scale-in
        h.observe(float(t), 0.0, policy)
    assert decide(policy, h, 10, 29.0).replicas == 10
    for t in range(30, 70):
        h.observe(float(t), 0.0, policy)
    assert decide(policy, h, 10, 69.0).replicas == 1  # panic over, scale-in delay 0: down to 1 (min 0, not idle)


def test_policy_from_spec() -> None:
    assert Policy.from_spec({}) is None
    assert Policy.from_spec({"autoscale": None}) is None
    p = Policy.from_spec({"autoscale": {"min": 1, "max": 3, "target": 2, "cold_start_timeout_s": None}})
    assert p == Policy(min=1, max=3, target=2)
