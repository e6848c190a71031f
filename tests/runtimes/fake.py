"""An in-memory runtime for tests that need what a real backend cannot do on demand (a start that fails
N times, a replica that exits with a given code or never becomes running, a stop that needs SIGKILL).

A test double, not a backend: the platform cannot select it (``make_runtime`` builds only real
runtimes, which tests/runtimes/test_contract.py runs against), so it lives here. Nothing runs: a
replica is a record in a :class:`FakeHost`. Share one host between two ``FakeRuntime`` instances to
model a reconciler restart (the second adopts what the first started). Knobs:
:meth:`FakeRuntime.fail_start` (next starts of a service raise), :meth:`~FakeRuntime.exit` (a replica
ends with a code), :meth:`~FakeRuntime.hang` (a replica stays CREATED: started but never running),
``ignore_sigterm`` (stop needs SIGKILL) and ``capacity``/``gpus`` (starts beyond them raise
``TemporaryError``). ``calls`` records every operation for assertions; ports and runtime ids come from
counters, time from ``clock``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from arkserve.errors import ArkserveError, TemporaryError
from arkserve.runtimes.base import ReplicaInfo, ReplicaPhase, ReplicaSpec, checked_object_name


@dataclass
class FakeReplica:
    spec: ReplicaSpec
    info: ReplicaInfo
    ignore_sigterm: bool = False
    stopped_with: str = ""  # "SIGTERM" or "SIGKILL" once stopped


@dataclass
class FakeHost:
    """The pretend machine: replicas and knobs that outlive one FakeRuntime instance."""

    replicas: dict[tuple[str, str], FakeReplica] = field(default_factory=dict)
    start_failures: dict[str, list[ArkserveError]] = field(default_factory=dict)
    hang_services: set[str] = field(default_factory=set)
    ignore_sigterm_services: set[str] = field(default_factory=set)
    capacity: int | None = None  # max replicas present at once
    gpus: int = 0
    next_port: int = 30000
    next_id: int = 1
    stopped: list[FakeReplica] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeRuntime:
    name = "fake"

    def __init__(self, host: FakeHost | None = None, clock: Callable[[], float] | None = None) -> None:
        self.host = host or FakeHost()
        self.clock = clock or (lambda: 1_700_000_000.0)
        self.calls: list[tuple[str, str, str]] = []
        self.closed = False

    # -- knobs -------------------------------------------------------------------------------
    def fail_start(self, service: str, error: ArkserveError, times: int = 1) -> None:
        """The next ``times`` starts of ``service`` raise ``error``."""
        with self.host.lock:
            self.host.start_failures.setdefault(service, []).extend([error] * times)

    def exit(self, service: str, replica: str, code: int, error: str = "") -> None:
        """The replica's process ends with ``code`` (a crash when non-zero)."""
        with self.host.lock:
            r = self.host.replicas[(service, replica)]
            r.info = replace(r.info, phase=ReplicaPhase.EXITED, exit_code=code, error=error)

    def hang(self, service: str, replica: str | None = None) -> None:
        """Keep a replica (or every future replica of ``service``) CREATED, never RUNNING."""
        with self.host.lock:
            if replica is None:
                self.host.hang_services.add(service)
            else:
                r = self.host.replicas[(service, replica)]
                r.info = replace(r.info, phase=ReplicaPhase.CREATED)

    def run(self, service: str, replica: str) -> None:
        """Let a hung replica proceed to RUNNING."""
        with self.host.lock:
            r = self.host.replicas[(service, replica)]
            r.info = replace(r.info, phase=ReplicaPhase.RUNNING)

    def ignore_sigterm(self, service: str) -> None:
        with self.host.lock:
            self.host.ignore_sigterm_services.add(service)

    # -- the Runtime interface ---------------------------------------------------------------
    def start(self, spec: ReplicaSpec) -> ReplicaInfo:
        checked_object_name(spec.service, spec.replica)
        with self.host.lock:
            self.calls.append(("start", spec.service, spec.replica))
            failures = self.host.start_failures.get(spec.service)
            if failures:
                raise failures.pop(0)
            key = (spec.service, spec.replica)
            existing = self.host.replicas.get(key)
            if existing is not None and existing.info.phase is not ReplicaPhase.EXITED:
                return existing.info
            present = len(self.host.replicas) - (existing is not None)
            if self.host.capacity is not None and present >= self.host.capacity:
                raise TemporaryError(f"no capacity: {present} of {self.host.capacity} replicas running",
                                     code="InsufficientCapacity")
            if spec.gpus > self.host.gpus:
                raise TemporaryError(f"insufficient GPUs: want {spec.gpus}, have {self.host.gpus}",
                                     code="InsufficientCapacity")
            hung = spec.service in self.host.hang_services
            info = ReplicaInfo(service=spec.service, replica=spec.replica, revision=spec.revision,
                               phase=ReplicaPhase.CREATED if hung else ReplicaPhase.RUNNING, host="127.0.0.1",
                               port=self.host.next_port, started_at=self.clock(),
                               runtime_id=f"fake-{self.host.next_id}")
            self.host.next_port += 1
            self.host.next_id += 1
            self.host.replicas[key] = FakeReplica(
                spec, info, ignore_sigterm=spec.service in self.host.ignore_sigterm_services)
            return info

    def stop(self, service: str, replica: str, grace_s: float = 10.0) -> None:
        with self.host.lock:
            self.calls.append(("stop", service, replica))
            r = self.host.replicas.pop((service, replica), None)
            if r is not None:
                r.stopped_with = "SIGKILL" if r.ignore_sigterm else "SIGTERM"
                self.host.stopped.append(r)

    def list(self) -> list[ReplicaInfo]:
        with self.host.lock:
            self.calls.append(("list", "", ""))
            return [r.info for _, r in sorted(self.host.replicas.items())]

    def inspect(self, service: str, replica: str) -> ReplicaInfo | None:
        with self.host.lock:
            self.calls.append(("inspect", service, replica))
            r = self.host.replicas.get((service, replica))
            return r.info if r else None

    def close(self) -> None:
        self.closed = True
