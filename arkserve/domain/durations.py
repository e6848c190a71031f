"""Durations as users type them in query strings and flags: ``30s``, ``15m``, ``2h``, ``1d``."""

from __future__ import annotations

import math

from arkserve.errors import ValidationFailed

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str, field: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d`` or a number of seconds; positive."""
    text = value.strip()
    try:
        seconds = float(text[:-1]) * UNITS[text[-1]] if text and text[-1] in UNITS else float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValidationFailed(f"{field}: expected a duration like 30s, 15m, 1h or 1d", field=field)
    return seconds
