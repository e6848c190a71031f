"""Settled or not, and the status the API shows meanwhile (table-driven)."""

from __future__ import annotations

import pytest

from arkserve.domain.rollout import Replica, honest_status, settled

NEW, OLD = "r2", "r1"


@pytest.mark.parametrize(("desired", "replicas", "expected"), [
    (2, [Replica("ready", NEW), Replica("ready", NEW)], True),
    (2, [Replica("ready", OLD), Replica("ready", OLD)], False),  # the update has not begun
    (2, [Replica("ready", NEW), Replica("starting", NEW)], False),
    (2, [Replica("ready", NEW), Replica("ready", NEW), Replica("draining", OLD)], False),
    (1, [Replica("ready", NEW), Replica("ready", NEW)], False),  # scaling down
    (0, [], True),
])
def test_settled(desired: int, replicas: list[Replica], expected: bool) -> None:
    assert settled(desired, NEW, replicas) is expected


@pytest.mark.parametrize(("stored", "desired", "replicas", "shown"), [
    ("ready", 2, [Replica("ready", NEW)] * 2, "ready"),
    ("ready", 2, [Replica("ready", OLD)] * 2, "updating"),  # just PATCHed: the reconciler has not run yet
    ("ready", 3, [Replica("ready", NEW)] * 2, "progressing"),  # just scaled up
    ("stopped", 1, [], "progressing"),
    ("degraded", 2, [Replica("ready", OLD), Replica("failed", NEW)], "degraded"),  # failures are never hidden
    ("failed", 1, [Replica("failed", NEW)], "failed"),
])
def test_a_stale_ready_is_not_shown(stored: str, desired: int, replicas: list[Replica], shown: str) -> None:
    assert honest_status(stored, "", "", desired, NEW, replicas)[0] == shown
