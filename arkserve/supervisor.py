"""``arkserve up``'s process supervisor: runs each part as a child process and restarts it if it dies.

Shutdown order on SIGINT/SIGTERM: SIGTERM to every child (the gateway first stops
accepting and lets in-flight requests finish), wait up to a grace period, SIGKILL the rest.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``arkserve up`` dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, children: Sequence[Child], env: Mapping[str, str], *, grace_s: float = 15.0,
                 say: Callable[[str], None] = print) -> None:
        self.children = list(children)
        self.env = dict(env)
        self.grace_s = grace_s
        self.say = say
        self.stopping = threading.Event()

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen([sys.executable, "-m", "arkserve", *child.argv], env=self.env,
                                      preexec_fn=_die_with_parent)
        child.started_at = time.monotonic()

    def start(self) -> None:
        for child in self.children:
            self._start(child)

    def install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            self.stopping.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def watch(self, interval: float = 0.5) -> None:
        """Restart children that exit, with exponential backoff, until asked to stop."""
        while not self.stopping.wait(interval):
            for child in self.children:
                proc = child.proc
                if proc is None or proc.poll() is None:
                    if proc is None and time.monotonic() >= child.next_start:
                        self._start(child)
                    continue
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0  # it ran for a while: start the backoff afresh
                delay = min(30.0, 0.5 * 2 ** child.restarts)
                child.restarts += 1
                self.say(f"arkserve: {child.name} exited with code {proc.returncode}; restarting in {delay:.1f}s")
                child.proc = None
                child.next_start = time.monotonic() + delay

    def stop(self) -> None:
        alive = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for proc in alive:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
