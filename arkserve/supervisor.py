"""``arkserve up``'s process supervisor: runs each part as a child process and restarts it if it dies.

Children run in process groups of their own, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the parts **in order** (``stop_order``), each completely before the next:

0. the asynchronous-inference dispatcher (it stops claiming; requests it has in flight get up to 10 s, the
   rest go back to the queue when their lease runs out);
1. the gateway: it stops accepting, answers what is in flight (``Connection: close``), its admin
   ``/healthz`` says ``draining``; it exits once drained or after its grace;
2. the reconciler (which stops the replicas when ``up`` asked it to): only now, so no in-flight
   request loses its replica;
3. the API (and any part not named in ``stop_order``).

Each child gets SIGTERM, then up to its ``stop_timeout_s``, then SIGKILL. A second SIGINT/SIGTERM
forces: the part now stopping gets a second SIGTERM (the gateway ends its drain at once) and every
part from then on gets at most ``forced_timeout_s``, except a part that must finish its own stop
(``Child.forceable`` false: the reconciler stopping the replicas, each within its grace; killing it
then would leave them running with nothing to stop them).

While running, the supervisor keeps ``state_file`` (JSON: its pid, each part's pid) up to date for
``arkserve status`` and ``arkserve down``; it removes the file when it is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when ``arkserve up`` dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    stop_timeout_s: float = 15.0  # SIGTERM -> SIGKILL when stopping
    forceable: bool = True  # a second Ctrl-C shortens its stop to ``forced_timeout_s``
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


def run_file(data_dir: Path) -> Path:
    """Where ``arkserve up`` records its pid and its parts' pids."""
    return Path(data_dir) / "run" / "up.json"


def restart_delay(returncode: int, ran_s: float, restarts: int) -> tuple[float, int]:
    """How long to wait before starting an exited part again, and its restart count from then on.

    A part that crashes again and again waits longer each time (0.5 s doubling, at most 30 s); one that ran
    for a minute starts the count afresh. A part stopped by SIGTERM (or that exited 0 after a second) was
    asked to restart (``arkserve image gc`` restarts the registry twice a pass, an admin may ``kill`` a part):
    it starts again at once and its count stays as it was, so restarts asked for never add up to a long wait.
    """
    if returncode == -signal.SIGTERM or (returncode == 0 and ran_s >= 1.0):
        return 0.0, restarts
    if ran_s > 60:
        restarts = 0  # it ran for a while: start the backoff afresh
    return min(30.0, 0.5 * 2 ** restarts), restarts + 1


class Supervisor:
    def __init__(self, children: Sequence[Child], env: Mapping[str, str], *, grace_s: float | None = None,
                 say: Callable[[str], None] = print,
                 stop_order: Sequence[str] = ("dispatcher", "gateway", "reconciler"),
                 forced_timeout_s: float = 5.0, state_file: Path | None = None,
                 state_extra: Mapping[str, object] | None = None) -> None:
        self.children = list(children)
        self.state_extra = dict(state_extra or {})  # more for the state file (where the parts listen)
        if grace_s is not None:  # one timeout for every child (older callers)
            for child in self.children:
                child.stop_timeout_s = grace_s
        self.env = dict(env)
        self.say = say
        self.stop_order = list(stop_order)
        self.forced_timeout_s = forced_timeout_s
        self.state_file = state_file
        self.stopping = threading.Event()
        self.forced = threading.Event()

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen([sys.executable, "-m", "arkserve", *child.argv], env=self.env,
                                      preexec_fn=_die_with_parent, process_group=0)
        child.started_at = time.monotonic()
        self._write_state()

    def start(self) -> None:
        for child in self.children:
            self._start(child)

    def install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if self.stopping.is_set():
                self.forced.set()
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
                delay, child.restarts = restart_delay(proc.returncode, time.monotonic() - child.started_at,
                                                      child.restarts)
                self.say(f"arkserve: {child.name} exited with code {proc.returncode}; restarting in {delay:.1f}s")
                child.proc = None
                child.next_start = time.monotonic() + delay

    # ------------------------------------------------------------------------------ stopping
    def stages(self) -> list[list[Child]]:
        """The children grouped in stop order: one stage per name in ``stop_order``, then the rest."""
        named = [[c for c in self.children if c.name == name] for name in self.stop_order]
        rest = [c for c in self.children if c.name not in self.stop_order]
        return [stage for stage in [*named, rest] if stage]

    def stop(self) -> None:
        """Stop every child, stage after stage (see the module docstring)."""
        self.stopping.set()
        for stage in self.stages():
            self._stop_stage(stage)
        if self.state_file is not None:
            with contextlib.suppress(OSError, ValueError):  # only its own: never another ``up``'s
                if json.loads(self.state_file.read_text()).get("pid") == os.getpid():
                    self.state_file.unlink()

    def _stop_stage(self, stage: list[Child]) -> None:
        alive = [c for c in stage if c.proc is not None and c.proc.poll() is None]
        for child in alive:
            self._signal(child, signal.SIGTERM)
        started = time.monotonic()
        forced_at: float | None = None
        while alive:
            if self.forced.is_set() and forced_at is None:
                forced_at = time.monotonic()
                for child in alive:
                    if child.forceable:
                        self._signal(child, signal.SIGTERM)  # the second one: the gateway ends its drain now
            for child in list(alive):
                assert child.proc is not None
                deadline = started + child.stop_timeout_s
                if forced_at is not None and child.forceable:
                    deadline = min(deadline, forced_at + self.forced_timeout_s)
                if child.proc.poll() is not None:
                    alive.remove(child)
                elif time.monotonic() >= deadline:
                    self.say(f"arkserve: {child.name} did not stop within {time.monotonic() - started:.0f}s; "
                             "killing it")
                    self._signal(child, signal.SIGKILL)
                    child.proc.wait()
                    alive.remove(child)
            time.sleep(0.05)

    @staticmethod
    def _signal(child: Child, sig: int) -> None:
        if child.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(sig)

    # ------------------------------------------------------------------------------ state file
    def _write_state(self) -> None:
        if self.state_file is None:
            return
        parts = {c.name: c.proc.pid for c in self.children if c.proc is not None}
        data = {**self.state_extra, "pid": os.getpid(), "parts": parts, "written_at": time.time()}
        tmp = self.state_file.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.state_file)
