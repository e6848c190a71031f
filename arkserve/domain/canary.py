"""Canary revisions (pure): how many replicas a canary gets, how a request picks a revision, and which of a
service's replicas belong to which revision.

A service may run a *canary*: a second spec beside the stable one, with ``weight`` percent of the requests.
The gateway draws a revision per request (:func:`pick_canary`: one random draw, or a hash of the request's
``X-Ark-Canary-Key`` header so that one key always lands on the same revision); the planner keeps both
revisions' replicas (``domain/planning.py``, :class:`~arkserve.domain.planning.Desired` ``canary``).
"""

from __future__ import annotations

import hashlib
import math
import random

CANARY_KEY_HEADER = b"x-ark-canary-key"  # sticky routing: the same value always reaches the same revision
MIN_WEIGHT, MAX_WEIGHT = 1, 99


def canary_replicas(stable_replicas: int, weight: int) -> int:
    """The canary's replica count: its share of the stable count, rounded up, at least 1 (so a canary of a
    service scaled to 0 can still be tried), e.g. 4 replicas at 10 % -> 1, 10 at 25 % -> 3."""
    return max(1, math.ceil(stable_replicas * weight / 100))


def pick_canary(weight: int, key: bytes | None = None) -> bool:
    """Whether this request goes to the canary (``weight`` percent of them). With a ``key``: a hash of it,
    so the same key always gets the same answer for a given weight (and raising the weight only moves keys
    from stable to canary, never back)."""
    if key is None:
        return random.random() * 100 < weight
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % 100 < weight


def split_label(weight: int) -> str:
    """``90/10`` (stable/canary), as the CLI and the status message say it."""
    return f"{100 - weight}/{weight}"
