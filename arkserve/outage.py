"""Warnings about something a loop retries while it is away (the store, mostly): the first failure at once, then at
most one line per ``every_s`` with how many failed meanwhile, and one line when it works again.

Loops that poll every 0.1 s (the reconciler, the dispatcher, a gateway worker's routing acknowledgement) otherwise
wrote ten warnings a second each while the store was away: about 150 MB of log a day, into an ``up.log`` nobody
rotates (hostile review, 2026-12-03).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class OutageLog:
    def __init__(self, log: logging.Logger, what: str, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.what, self.every_s, self.clock = log, what, every_s, clock
        self.since: float | None = None  # when the current run of failures began
        self.said_at = 0.0
        self.failures = 0  # in the current run
        self.unsaid = 0  # failures since the last line

    def failed(self, message: str) -> None:
        now = self.clock()
        self.failures += 1
        if self.since is None:
            self.since = self.said_at = now
            self.log.warning("%s: %s", self.what, message)
            return
        self.unsaid += 1
        if now - self.said_at >= self.every_s:
            self.log.warning("%s: %s (%d more times in the last %.0f s)", self.what, message, self.unsaid,
                             now - self.said_at)
            self.said_at, self.unsaid = now, 0

    def ok(self) -> None:
        if self.since is not None:
            if self.failures > 1:
                self.log.warning("%s: works again after %.0f s (%d failures)", self.what, self.clock() - self.since,
                                 self.failures)
            self.since, self.failures, self.unsaid = None, 0, 0
