"""OutageLog: a loop that retries every 0.1 s while the store is away writes a few lines, not ten a second."""

from __future__ import annotations

import logging

import pytest

from arkserve.outage import OutageLog


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_two_minute_outage_polled_ten_times_a_second_is_a_handful_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    away = OutageLog(logging.getLogger("arkserve.test"), "pass skipped", every_s=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, "arkserve.test"):
        for _ in range(1200):  # 120 s at 10 a second
            away.failed("the store is unavailable")
            clock.t += 0.1
        away.ok()
        away.ok()  # working: nothing more to say
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "pass skipped: the store is unavailable"
    assert len(lines) == 3, lines  # the first, one a minute later, and the recovery (at 119.9 s: no second minute)
    assert "more times in the last 60 s" in lines[1] and 598 <= int(lines[1].split("(")[1].split()[0]) <= 602
    assert lines[-1] == "pass skipped: works again after 120 s (1200 failures)"
    caplog.clear()
    with caplog.at_level(logging.WARNING, "arkserve.test"):
        away.failed("again")  # a new outage is said at once
        away.ok()  # one failure: its line said it all
    assert [r.getMessage() for r in caplog.records] == ["pass skipped: again"]
