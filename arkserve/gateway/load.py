"""What a gateway worker tells the autoscaler: its load per service, and wakes of services scaled to zero.

:class:`LoadSink` is the interface the :class:`~arkserve.gateway.core.Core` calls from the event loop (both calls
only hand over and return). :class:`BackgroundLoad` delivers on a daemon thread to two functions the caller
injects (``arkserve gateway`` wires them to the store; the gateway package never imports it): wakes at once, the
latest load report within ``interval_s``. :func:`service_loads` is the per-service count the core reports;
:func:`worker_loads` adds the count per replica (under ``domain.draining.replica_key``), for the replicas that had
requests since the last report and for those that left routing with requests still on them (:func:`note_leaving`
keeps these): the reconciler stops a replica taken away only once no worker reports a request on it, and scales in
idle replicas first (docs/autoscaling.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from arkserve.domain.draining import replica_key
from arkserve.gateway.balancer import ReplicaState, ServicePool

Loads = dict[str, tuple[int, int]]  # service -> (requests in flight at its replicas, requests queued for it)


@runtime_checkable
class LoadSink(Protocol):
    def report(self, loads: Loads) -> None:
        """This worker's load for the services that have some or whose load changed since the last report."""
        ...

    def wake(self, service: str, queued: int) -> None:
        """A request waits for ``service``, which has no replica: ask for one now."""
        ...

    def close(self) -> None: ...


def service_loads(pools: Mapping[str, ServicePool], queues: Mapping[str, Iterable[object]]) -> Loads:
    """(in flight, queued) for every service with either since the last call; others are absent.

    In flight is each replica's peak since the last report, not the count at this instant: a request that began
    and ended between two reports counts, so a service that gets one short request every few seconds is never
    taken for idle and scaled to zero (it was, at the instant's count: hostile review, 2026-12-03). The peaks
    start again from what is in flight now."""
    return worker_loads(pools, queues, None)


def worker_loads(pools: Mapping[str, ServicePool], queues: Mapping[str, Iterable[object]],
                 leaving: set[ReplicaState] | None) -> Loads:
    """:func:`service_loads`, and with ``leaving`` given also (in flight, 0) per replica: each replica's peak since
    the last call, and for a replica in ``leaving`` (out of routing: no request starts on it any more) the requests
    on it now. Those of ``leaving`` with none left are dropped from it. A request in flight on a replica that left
    routing does not count for its service (the autoscaler sizes the replicas that stay)."""
    out: Loads = {}
    for name, pool in pools.items():
        n = 0
        for st in pool.replicas:
            if st.peak and leaving is not None:
                _add(out, replica_key(st.replica), st.peak)
            n += st.peak
            st.peak = st.outstanding
        if n:
            out[name] = (n, 0)
    if leaving:
        for st in list(leaving):
            if st.outstanding > st.tunnels:  # open tunnels (WebSockets) end when the replica stops: not waited for
                _add(out, replica_key(st.replica), st.outstanding - st.tunnels)
            else:
                leaving.discard(st)
    for name, q in queues.items():
        waiting = sum(1 for _ in q)
        if waiting:
            out[name] = (out.get(name, (0, 0))[0], waiting)
    return out


def _add(out: Loads, key: str, n: int) -> None:
    out[key] = (out.get(key, (0, 0))[0] + n, 0)


def note_leaving(before: Mapping[str, ServicePool], after: Mapping[str, ServicePool], leaving: set[ReplicaState],
                 names: Iterable[str] | None = None) -> None:
    """Called as a snapshot is applied: add to ``leaving`` each replica of the pools ``before`` (those of ``names``;
    all by default) that has requests in flight and is no longer in the pool of its service ``after``."""
    for name in before if names is None else names:
        old = before.get(name)
        if old is None:
            continue
        new = after.get(name)
        kept = set(new.replicas) if new is not None else set()
        leaving.update(st for st in old.replicas if st.outstanding > st.tunnels and st not in kept)


def changes(previous: Loads, now: Loads) -> Loads:
    """What to report: every non-zero load (a refresh: stale rows count as zero), and zeros for services that had
    load in the previous report."""
    out = dict(now)
    for name in previous:
        if name not in now:
            out[name] = (0, 0)
    return out


class BackgroundLoad:
    """Hands reports and wakes to ``deliver_report`` / ``deliver_wake`` on a daemon thread; failures are counted and
    dropped (a store that is away must not stop the gateway; the next report repeats the load)."""

    def __init__(self, deliver_report: Callable[[Loads], None], deliver_wake: Callable[[str, int], None]) -> None:
        self._report, self._wake = deliver_report, deliver_wake
        self._lock = threading.Lock()
        self._pending: Loads | None = None
        self._wakes: dict[str, int] = {}
        self._event = threading.Event()
        self._stop = False
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="arkserve-load", daemon=True)
        self._thread.start()

    def report(self, loads: Loads) -> None:
        with self._lock:
            self._pending = loads
        self._event.set()

    def wake(self, service: str, queued: int) -> None:
        with self._lock:
            self._wakes[service] = max(queued, self._wakes.get(service, 0))
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait()
            self._event.clear()
            with self._lock:
                wakes, self._wakes = self._wakes, {}
                pending, self._pending = self._pending, None
                stop = self._stop
            for service, queued in wakes.items():
                self._call(self._wake, service, queued)
            if pending:
                self._call(self._report, pending)
            if stop:
                return

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            self.failures += 1

    def close(self) -> None:
        with self._lock:
            self._stop = True
        self._event.set()
        self._thread.join(timeout=5)
