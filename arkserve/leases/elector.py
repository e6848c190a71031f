"""The elector: a thread that takes and renews one lease, and says whether this process may act now.

Safety rests on one rule: after a renewal *attempt* that began at monotonic time ``t0`` succeeds, this process
acts only until ``t0 + duration - margin`` (``margin`` = one renewal period). The backend counted the lease's
expiry from a later instant (its own clock, when the write landed), so a leader that stops renewing (a
partition, a hung store, a stopped VM) stops acting before any other candidate can take the lease over.
A crashed leader is replaced once its lease expires: at most ``duration`` plus one retry period later.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from arkserve.errors import ArkserveError
from arkserve.leases.base import Holding, LeaseBackend
from arkserve.outage import OutageLog

log = logging.getLogger("arkserve.leases")


def identity() -> str:
    """This candidate's name in the lease: host (the Pod's name in Kubernetes), pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Elector:
    def __init__(self, backend: LeaseBackend, holder: str | None = None, *, duration_s: float = 10.0,
                 renew_every_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend, self.holder, self.clock = backend, holder or identity(), clock
        self.duration_s = duration_s
        self.renew_every_s = renew_every_s if renew_every_s is not None else max(0.05, duration_s / 4)
        if not 0 < self.renew_every_s < duration_s / 2:
            raise ValueError("the renewal period must be under half the lease duration")
        self.token: int | None = None  # the fencing token of the lease we hold (or last held)
        self._deadline = 0.0  # monotonic time until which we may act
        self._seen: tuple[str, int] | None = None  # the last (holder, token) logged, to log changes only
        self.stop_event = threading.Event()
        self.changed = threading.Event()  # set whenever leadership is won or lost
        self._was = False  # whether we led after the previous step
        self.thread: threading.Thread | None = None
        # a store outage fails every renewal: said once, then once a minute with a count, then "works again"
        self._away = OutageLog(log, f"lease {backend.name}", clock=clock)

    def is_leader(self) -> bool:
        return self.clock() < self._deadline

    def step(self) -> bool:
        """One acquire-or-renew attempt; returns whether this process leads now."""
        was, t0 = self._was, self.clock()
        try:
            got: Holding | None = self.backend.acquire(self.holder, self.duration_s)
        except ArkserveError as exc:
            self._away.failed(f"renewal failed: {exc.message}")
            got = None
        except Exception as exc:  # a client's own error types (the store's driver, the Kubernetes client)
            self._away.failed(f"renewal failed: {exc.__class__.__name__}")
            got = None
        else:
            self._away.ok()
        if got is not None and got.holder == self.holder:
            self._deadline = t0 + self.duration_s - self.renew_every_s
            if self.token != got.token:
                self.token = got.token
        elif got is not None:
            self._deadline = 0.0
        now = self._was = self.is_leader()
        if got is not None and (got.holder, got.token) != self._seen:
            self._seen = (got.holder, got.token)
            if got.holder == self.holder:
                log.info("leading: this process holds the %s lease as %s (fencing token %d)",
                         self.backend.name, self.holder, got.token)
            else:
                log.info("waiting: another reconciler leads (%s lease held by %s); taking over when it expires",
                         self.backend.name, got.holder or "nobody")
        if was and not now:
            log.warning("lost the %s lease: stopped acting", self.backend.name)
        if was != now:
            self.changed.set()
        return now

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.step()
            self.stop_event.wait(self._next_wait())

    def _next_wait(self) -> float:
        if not self.is_leader():
            return self.renew_every_s
        # renew every period, and never sleep past the instant we must stop acting
        return max(0.0, min(self.renew_every_s, self._deadline - self.clock()))

    def start(self) -> Elector:
        self.thread = threading.Thread(target=self.run, name="ark-lease", daemon=True)
        self.thread.start()
        return self

    def wait_leading(self, stop: threading.Event, poll_s: float = 0.05) -> bool:
        """Block until this process leads (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            if self.is_leader():
                return True
            self.changed.wait(poll_s)
            self.changed.clear()
        return False

    def stop(self, release: bool = True) -> None:
        """Stop renewing; give the lease up at once if we hold it, so another takes over without waiting."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=self.duration_s)
        held, self._deadline = self.is_leader(), 0.0
        if release and held and self.token is not None:
            try:
                self.backend.release(self.holder, self.token)
                log.info("released the %s lease", self.backend.name)
            except Exception as exc:
                log.warning("lease %s: release failed (%s); it expires by itself", self.backend.name,
                            exc.__class__.__name__)
