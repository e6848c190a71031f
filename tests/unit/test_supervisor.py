"""The supervisor's restart policy (``restart_delay``): crashes back off, restarts someone asked for do not."""

from __future__ import annotations

import signal

from arkserve.supervisor import restart_delay


def test_a_part_crashing_again_and_again_waits_longer_each_time_up_to_30_s() -> None:
    restarts, delays = 0, []
    for _ in range(8):
        delay, restarts = restart_delay(1, 0.2, restarts)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_part_that_ran_a_minute_starts_its_backoff_afresh() -> None:
    assert restart_delay(1, 61.0, 6) == (0.5, 1)


def test_a_part_stopped_by_sigterm_starts_again_at_once_and_its_count_stays() -> None:
    # `arkserve image gc` restarts the registry twice a pass: a few passes in a row must not add up
    restarts = 0
    for _ in range(6):
        delay, restarts = restart_delay(-signal.SIGTERM, 0.3, restarts)
        assert delay == 0.0
    assert restarts == 0
    assert restart_delay(-signal.SIGTERM, 5.0, 3) == (0.0, 3)  # a crash streak before it is kept


def test_a_clean_exit_restarts_at_once_only_after_it_ran_a_second() -> None:
    assert restart_delay(0, 2.0, 2) == (0.0, 2)
    assert restart_delay(0, 0.1, 2) == (2.0, 3)  # exiting 0 at once, again and again: backed off like a crash
    assert restart_delay(-signal.SIGKILL, 30.0, 0) == (0.5, 1)  # the OOM killer's SIGKILL is a crash
