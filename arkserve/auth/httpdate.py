"""The signed ``date`` header: formatting a timestamp as an HTTP date and parsing one back, strictly.

This module owns the one date format the ark signature accepts, ``Tue, 24 Nov 2026 06:00:00 GMT``
(UTC, English names, whatever the locale), and the calendar arithmetic behind it. It imports only
the standard library; :mod:`arkserve.auth.signing` re-exports :func:`format_date` and
:func:`parse_date`, and its verifiers call the cached :func:`_parse_date` directly.
"""

from __future__ import annotations

import time
from functools import lru_cache

from arkserve.auth.signature_errors import InvalidDate

__all__ = ["format_date", "parse_date"]

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DATE_LEN = len("Tue, 24 Nov 2026 06:00:00 GMT")
_DIGITS_TO_9 = bytes.maketrans(b"0123456789", b"9999999999")


def format_date(ts: float) -> str:
    """``strftime("%a, %d %b %Y %H:%M:%S GMT")`` in UTC with English names, independent of locale."""
    t = time.gmtime(ts)
    return (
        f"{_DAY_NAMES[t.tm_wday]}, {t.tm_mday:02d} {_MONTH_NAMES[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@lru_cache(maxsize=64)
def _day(prefix: str) -> int:
    """``"Tue, 24 Nov 2026"`` (digits already checked) -> days since 1970-01-01; the weekday must agree."""
    month = _MONTHS.get(prefix[8:11])
    if month is None:
        raise InvalidDate(prefix)
    day, year = int(prefix[5:7]), int(prefix[12:16])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= day <= _DAYS_IN_MONTH[month - 1] + (month == 2 and leap):
        raise InvalidDate(prefix)
    days = _days_from_civil(year, month, day)
    if _DAY_NAMES[(days + 3) % 7] != prefix[:3]:  # 1970-01-01 was a Thursday
        raise InvalidDate(prefix)
    return days


@lru_cache(maxsize=512)
def _parse_date(value: str) -> float:
    # Exactly "Www, DD Mmm YYYY HH:MM:SS GMT" (29 characters, ASCII digits); anything else is rejected.
    # One bytes.translate() maps every digit to "9", so two comparisons check all the separators and
    # digit positions; the calendar part is cached per day, so a date the cache has not seen yet
    # (a new second) costs little more than the time-of-day arithmetic.
    if len(value) != _DATE_LEN or not value.isascii():
        raise InvalidDate(_bad_date_message(value))
    shape = value.encode("ascii").translate(_DIGITS_TO_9)
    if shape[3:8] != b", 99 " or shape[11:] != b" 9999 99:99:99 GMT":
        raise InvalidDate(_bad_date_message(value))
    try:
        days = _day(value[:16])
    except InvalidDate:
        raise InvalidDate(_bad_date_message(value)) from None
    hour, minute, second = int(value[17:19]), int(value[20:22]), int(value[23:25])
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidDate(_bad_date_message(value))
    return float(days * 86400 + hour * 3600 + minute * 60 + second)


def _bad_date_message(value: str) -> str:
    shown = value if len(value) <= 64 else value[:64] + "..."
    return f"date header {shown!r} is not of the form 'Tue, 24 Nov 2026 06:00:00 GMT' (UTC, English names)"


def parse_date(value: str) -> float:
    """Parse the fixed ``date`` format strictly into a POSIX timestamp; raise :class:`InvalidDate`."""
    if not value:
        raise InvalidDate("date header is missing or empty")
    return _parse_date(value)
