"""The login throttle's pure core, table-driven: delays, keys, trust, forgetting; and the hash-slot bound."""

from __future__ import annotations

import threading

import pytest

from arkserve.auth.throttle import LoginGuard, LoginThrottle, Policy, Throttled

P = Policy(free_failures=5, base_delay_s=1.0, max_delay_s=60.0, forget_after_s=900.0, trust_s=86400.0)


@pytest.mark.parametrize(("failures", "delay"), [
    (0, 0.0), (4, 0.0), (5, 0.0), (6, 1.0), (7, 2.0), (8, 4.0), (11, 32.0), (12, 60.0), (500, 60.0)])
def test_delay_doubles_after_the_free_failures_up_to_the_cap(failures: int, delay: float) -> None:
    assert P.delay(failures) == delay


# steps: (action, user, client, time, expected wait after the step)
@pytest.mark.parametrize(("steps", "probe", "expected"), [
    # five free failures, the sixth makes the next attempt wait a second
    ([("fail", "admin", "1.1.1.1", 0)] * 5, ("admin", "1.1.1.1", 0), 0.0),
    ([("fail", "admin", "1.1.1.1", 0)] * 6, ("admin", "1.1.1.1", 0), 1.0),
    ([("fail", "admin", "1.1.1.1", 0)] * 8, ("admin", "1.1.1.1", 1.5), 2.5),
    # the account key: failures from many addresses slow a new address too
    ([("fail", "admin", f"10.0.0.{i}", 0) for i in range(7)], ("admin", "9.9.9.9", 0), 2.0),
    # the address key: one address failing on many accounts is slowed on any account
    ([("fail", f"user{i}", "6.6.6.6", 0) for i in range(7)], ("someone", "6.6.6.6", 0), 2.0),
    # ...but not another address on another account
    ([("fail", f"user{i}", "6.6.6.6", 0) for i in range(7)], ("someone", "7.7.7.7", 0), 0.0),
    # a trusted pair (logged in before) is not slowed by the account's failures elsewhere
    ([("ok", "admin", "127.0.0.1", 0)] + [("fail", "admin", f"10.0.0.{i}", 1) for i in range(20)],
     ("admin", "127.0.0.1", 1), 0.0),
    # ...nor by its address's failures on other accounts
    ([("ok", "admin", "127.0.0.1", 0)] + [("fail", f"u{i}", "127.0.0.1", 1) for i in range(20)],
     ("admin", "127.0.0.1", 1), 0.0),
    # ...only by its own failures
    ([("ok", "admin", "127.0.0.1", 0)] + [("fail", "admin", "127.0.0.1", 1)] * 7, ("admin", "127.0.0.1", 1), 2.0),
    # trust expires
    ([("ok", "admin", "127.0.0.1", 0)] + [("fail", "admin", f"10.0.0.{i}", 90000) for i in range(7)],
     ("admin", "127.0.0.1", 90000), 2.0),
    # a success clears the pair, not the address (a user's own login buys no guesses elsewhere)
    ([("fail", "victim", "6.6.6.6", 0)] * 7 + [("ok", "mallory", "6.6.6.6", 0)], ("victim", "6.6.6.6", 0), 2.0),
    ([("fail", "admin", "1.1.1.1", 0)] * 7 + [("ok", "admin", "1.1.1.1", 0)], ("admin", "1.1.1.1", 0), 0.0),
    # counts are forgotten after forget_after_s without a failure
    ([("fail", "admin", "1.1.1.1", 0)] * 20, ("admin", "1.1.1.1", 899), 0.0),
    ([("fail", "admin", "1.1.1.1", 0)] * 20 + [("fail", "admin", "1.1.1.1", 900)], ("admin", "1.1.1.1", 900), 0.0),
    # the wait never exceeds the cap: throttled, never locked
    ([("fail", "admin", "1.1.1.1", 0)] * 1000, ("admin", "1.1.1.1", 60), 0.0),
    # user names are case-insensitive keys
    ([("fail", "Admin", "1.1.1.1", 0)] * 6, ("admin", "2.2.2.2", 0), 1.0),
])
def test_throttle_table(steps: list[tuple[str, str, str, float]], probe: tuple[str, str, float],
                        expected: float) -> None:
    t = LoginThrottle(P)
    for action, user, client, now in steps:
        if action == "fail":
            t.failed(user, client, now)
        else:
            t.succeeded(user, client, now)
    assert t.wait(*probe) == pytest.approx(expected)


def test_memory_is_bounded() -> None:
    t = LoginThrottle(Policy(max_entries=100))
    for i in range(1000):
        t.failed(f"u{i}", f"10.0.{i // 256}.{i % 256}", 0)
        t.succeeded(f"u{i}", "1.1.1.1", 0)
    assert len(t._counts) <= 100 and len(t._trusted) <= 100


def test_guard_refuses_at_once_while_throttled_or_busy() -> None:
    now = [0.0]
    guard = LoginGuard(2, P, clock=lambda: now[0])
    for _ in range(6):
        with guard.attempt("admin", "1.1.1.1"):
            guard.failed("admin", "1.1.1.1")
    with pytest.raises(Throttled) as e, guard.attempt("admin", "1.1.1.1"):
        pass
    assert (e.value.why, e.value.retry_after_s) == ("failures", 1)
    now[0] = 1.0
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with guard.attempt("x", "2.2.2.2"):
            held.set()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for th in threads:
        th.start()
        assert held.wait(10)
        held.clear()
    with pytest.raises(Throttled) as e, guard.attempt("y", "3.3.3.3"):
        pass
    assert (e.value.why, e.value.retry_after_s) == ("busy", 1)
    release.set()
    for th in threads:
        th.join()
    with guard.attempt("y", "3.3.3.3"):  # slots are given back
        pass
