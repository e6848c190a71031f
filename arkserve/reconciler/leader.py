"""The reconciler under leader election: it acts (reconciles, meters) only while this process holds the lease.

:func:`lead` waits for the lease, runs a fresh :class:`~arkserve.reconciler.loop.Reconciler` (adoption first,
so it takes over what the previous leader left running) for as long as the lease is held with the same fencing
token, and waits again when it is lost. :class:`FencedRuntime` checks the lease right before each call that
changes the runtime (start, stop), so a pass already under way when the lease lapses cannot start or stop a
replica after this process stopped leading.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from arkserve.errors import RuntimeUnavailable
from arkserve.leases.elector import Elector
from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.base import ReplicaInfo, ReplicaSpec, Runtime

log = logging.getLogger("arkserve.reconciler")


class FencedRuntime:
    """A runtime whose start and stop refuse (temporarily) once ``leading()`` is false."""

    def __init__(self, runtime: Runtime, leading: Callable[[], bool]) -> None:
        self.inner, self.leading, self.name = runtime, leading, runtime.name

    def _check(self, what: str) -> None:
        if not self.leading():
            raise RuntimeUnavailable(f"not the leader any more: {what} left to the reconciler that leads now")

    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        self._check(f"start of {spec.service}/{spec.replica}")
        return self.inner.start(spec)

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        self._check(f"stop of {service}/{replica}")
        self.inner.stop(service, replica, grace_s)

    def list(self) -> list[ReplicaInfo]:
        return self.inner.list()

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        return self.inner.inspect(service, replica)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # whatever else a runtime offers (logs, ...), unchanged
        return getattr(self.inner, name)


def lead(elector: Elector, stop: threading.Event, make: Callable[[Callable[[], bool]], Reconciler],
         make_meter: Callable[[], Any]) -> Reconciler | None:
    """Act while leading, wait while not, until ``stop`` is set. ``make(leading)`` builds a reconciler whose
    runtime is fenced by ``leading``. Returns the last reconciler if this process still leads at the end (the
    caller may then stop replicas at exit), else ``None``."""
    elector.start()
    last: Reconciler | None = None
    while elector.wait_leading(stop):
        term = elector.token

        def leading(term: int | None = term) -> bool:
            return elector.is_leader() and elector.token == term

        rec = make(leading)
        meter = make_meter()
        meter.start()
        stop_watch = threading.Thread(target=_relay, args=(stop, rec, leading), daemon=True)
        stop_watch.start()
        try:
            rec.run(leading)
        finally:
            rec.stop()
            if leading():
                meter.stop()  # a last pass bills up to now
            else:
                meter.stop_event.set()  # no last pass: the new leader's meter bills from here
                if meter.thread is not None:
                    meter.thread.join(timeout=30)
        if stop.is_set():
            last = rec if leading() else None
            break
        log.warning("no longer leading: stopped acting; waiting to lead again")
    return last


def _relay(stop: threading.Event, rec: Reconciler, leading: Callable[[], bool]) -> None:
    """Stop ``rec`` when the process is told to stop or the lease is lost (its loop also checks, between passes)."""
    while not stop.wait(0.05):
        if not leading() or rec.stop_event.is_set():
            break
    rec.stop_event.set()
