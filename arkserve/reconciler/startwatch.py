"""Fast readiness right after a start: watch a new replica closely and wake the loop the moment it answers.

The loop acts on a starting replica once per pass (``wake_poll_s``), so without help a replica turns ready up
to a pass after its app started listening. A :class:`StartWatch` wraps the runtime the workers use: each
successful ``start`` puts the replica's endpoint under watch, and one thread connects to it ``first_s`` (5 ms)
after the start, then every ``fast_s`` (10 ms) for its first ``fast_for_s`` seconds, then less and less often
(at most ``slow_s`` apart) until it answers or ``give_up_s`` passes. When it accepts a connection the watch
sets an event that ends the loop's pause (:meth:`StartWatch.pause`) at once, and ``rewakes`` times more,
``rewake_s`` apart, in case that pass found the service still busy with the pass that started it.

The watch only decides *when* to look: the replica turns ready in the worker's own pass (``observe``), which
probes it the usual way (the health path when there is one) and is the only writer of replica state. Many
replicas starting at once get the fast cadence only for the first ``fast_max`` of them; the rest are watched
at ``slow_s``, so a scale-up of hundreds does not spend the CPU it needs on probes.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from typing import Any

from arkserve.runtimes.base import ReplicaInfo, ReplicaPhase, ReplicaSpec, Runtime


class StartWatch:
    def __init__(self, runtime: Runtime, *, first_s: float = 0.005, fast_s: float = 0.01, fast_for_s: float = 2.0,
                 slow_s: float = 0.25, give_up_s: float = 60.0, rewake_s: float = 0.01, rewakes: int = 5,
                 fast_max: int = 16) -> None:
        self.runtime: Runtime = _Watched(runtime, self)
        self.first_s = first_s
        self.fast_s, self.fast_for_s, self.slow_s, self.give_up_s = fast_s, fast_for_s, slow_s, give_up_s
        self.rewake_s, self.rewakes, self.fast_max = rewake_s, rewakes, fast_max
        self.woken = threading.Event()
        self._due: list[tuple[float, int, str, int, float, int]] = []  # (at, seq, host, port, started, wakes left)
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, host: str, port: int) -> None:
        now = time.monotonic()
        with self._cond:
            heapq.heappush(self._due, (now + self.first_s, next(self._seq), host, port, now, 0))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ark-startwatch", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pause(self, timeout: float) -> None:
        """The loop's pause between passes: ends early when a watched replica has just answered."""
        if self.woken.wait(timeout):
            self.woken.clear()

    def _next(self, started: float, now: float) -> float:
        age = now - started
        if age < self.fast_for_s and len(self._due) < self.fast_max:
            return self.fast_s
        return min(self.slow_s, max(self.fast_s, age / 10))

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._due:
                    self._thread = None  # idle: the next watch starts a new thread
                    return
                at, _, host, port, started, wakes = self._due[0]
                if at > time.monotonic():
                    self._cond.wait(at - time.monotonic())
                    continue
                heapq.heappop(self._due)
            now = time.monotonic()
            if wakes or _accepts(host, port):
                self.woken.set()
                left = wakes - 1 if wakes else self.rewakes
                if left > 0:  # again shortly: the pass just woken may find the service busy with the starting pass
                    with self._cond:
                        heapq.heappush(self._due, (now + self.rewake_s, next(self._seq), host, port, started, left))
            elif now - started < self.give_up_s:
                with self._cond:
                    heapq.heappush(self._due, (now + self._next(started, now), next(self._seq), host, port, started, 0))


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class _Watched:
    """The runtime as the workers see it: the same, except that each replica it starts is put under watch."""

    def __init__(self, inner: Runtime, watch: StartWatch) -> None:
        self._inner, self._watch = inner, watch
        self.name = inner.name

    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        info = self._inner.start(spec)
        if info.phase is not ReplicaPhase.EXITED and info.port:
            self._watch.watch(info.host, info.port)
        return info

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        self._inner.stop(service, replica, grace_s)

    def list(self) -> list[ReplicaInfo]:
        return self._inner.list()

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        return self._inner.inspect(service, replica)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, attr: str) -> Any:  # anything else a backend offers (tests reach into fakes)
        return getattr(self._inner, attr)
