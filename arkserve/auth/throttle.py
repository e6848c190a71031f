"""Login throttling: per account and per client address, exponential delays, never a lockout; a bound on hashes.

:class:`LoginThrottle` is the pure core (time passed in). Failures are counted under three keys: the account,
the client address, and the pair of both. The first ``free_failures`` failures of a key cost nothing; each
later one makes that key wait ``base_delay_s * 2**k`` (k = 0, 1, 2 …) before the next attempt, at most
``max_delay_s``. A key is forgotten ``forget_after_s`` after its last failure.

An attempt waits for the longest delay among its keys, except from a *trusted* pair: a client address that
logged into this account successfully within ``trust_s``. There only the pair's own failures count, so an
attacker failing on the admin account from elsewhere slows the attacker, not the admin at the usual machine.
Nothing ever locks: at worst an attempt waits ``max_delay_s``. A success clears the pair's count (not the
address's: logging into one's own account does not buy more guesses on another).

:class:`LoginGuard` wraps the core with a lock and a clock, and bounds how many password hashes (Argon2id,
64 MiB each) run at once: an attempt beyond ``concurrency`` is refused at once instead of queueing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    free_failures: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    forget_after_s: float = 15 * 60.0
    trust_s: float = 30 * 86400.0
    max_entries: int = 100_000  # keys remembered; the oldest go first

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures of one key."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** min(over - 1, 60))


@dataclass
class _Count:
    failures: int
    last: float  # time of the last failure


class LoginThrottle:
    """Failure counts and trusted pairs; every method takes the current time ``now`` (seconds)."""

    def __init__(self, policy: Policy = Policy()) -> None:
        self.policy = policy
        self._counts: OrderedDict[str, _Count] = OrderedDict()
        self._trusted: OrderedDict[str, float] = OrderedDict()  # pair -> time of the last success

    @staticmethod
    def _keys(username: str, client: str) -> tuple[str, str, str]:
        user = username.strip().lower()
        return f"u:{user}", f"a:{client}", f"p:{user}@{client}"

    def _wait_of(self, key: str, now: float) -> float:
        c = self._counts.get(key)
        if c is None:
            return 0.0
        if now - c.last >= self.policy.forget_after_s:
            del self._counts[key]
            return 0.0
        return max(0.0, c.last + self.policy.delay(c.failures) - now)

    def trusted(self, username: str, client: str, now: float) -> bool:
        at = self._trusted.get(self._keys(username, client)[2])
        return at is not None and now - at < self.policy.trust_s

    def wait(self, username: str, client: str, now: float) -> float:
        """Seconds before an attempt on ``username`` from ``client`` may be made (0: now)."""
        user, addr, pair = self._keys(username, client)
        if self.trusted(username, client, now):
            return self._wait_of(pair, now)
        return max(self._wait_of(user, now), self._wait_of(addr, now), self._wait_of(pair, now))

    def failed(self, username: str, client: str, now: float) -> float:
        """Count a failure; return the wait it imposes on the next attempt from this client."""
        for key in self._keys(username, client):
            self._wait_of(key, now)  # forgets an expired count
            c = self._counts.pop(key, None) or _Count(0, now)
            self._counts[key] = _Count(c.failures + 1, now)  # re-inserted: the newest last
        self._trim(self._counts)
        return self.wait(username, client, now)

    def succeeded(self, username: str, client: str, now: float) -> None:
        pair = self._keys(username, client)[2]
        self._counts.pop(pair, None)
        self._trusted.pop(pair, None)
        self._trusted[pair] = now
        self._trim(self._trusted)

    def _trim(self, table: OrderedDict[str, _Count] | OrderedDict[str, float]) -> None:
        while len(table) > self.policy.max_entries:
            table.popitem(last=False)


class Throttled(Exception):
    """An attempt refused: ``why`` is "failures" (wait ``retry_after_s``) or "busy" (too many hashes at once)."""

    def __init__(self, why: str, retry_after_s: int) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after_s = retry_after_s


class LoginGuard:
    """The throttle of this process, thread-safe, with the bound on concurrent password hashes."""

    def __init__(self, concurrency: int, policy: Policy = Policy(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = LoginThrottle(policy)
        self._clock = clock
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, concurrency))

    @contextmanager
    def attempt(self, username: str, client: str) -> Iterator[None]:
        """Hold a hash slot for one password check, or raise :class:`Throttled` at once."""
        with self._lock:
            wait = self.throttle.wait(username, client, self._clock())
        if wait > 0:
            raise Throttled("failures", math.ceil(wait))
        if not self._slots.acquire(blocking=False):
            raise Throttled("busy", 1)
        try:
            yield
        finally:
            self._slots.release()

    def failed(self, username: str, client: str) -> float:
        with self._lock:
            return self.throttle.failed(username, client, self._clock())

    def succeeded(self, username: str, client: str) -> None:
        with self._lock:
            self.throttle.succeeded(username, client, self._clock())
