"""Fast readiness after a start: the start watch wakes the loop when a new replica answers (real reconciler,
real local runtime, a real app that takes a while to listen)."""

from __future__ import annotations

import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from arkserve.reconciler.startwatch import StartWatch
from arkserve.runtimes.local import LocalRuntime

from .conftest import FAST, running_cluster

SLOW_PASSES = replace(FAST, wake_poll_s=2.0, interval_s=2.0)  # a pass every 2 s: only the watch can be faster


def test_a_new_replica_is_ready_as_soon_as_it_answers_not_at_the_next_pass(tmp_path: Path) -> None:
    with running_cluster(tmp_path, LocalRuntime) as c:
        c.stop()
        c.config = SLOW_PASSES
        c.start()
        c.create("web", 0, command=f"sleep 0.3; exec {sys.executable} app.py")
        c.wait("the service to be seen", lambda: (s := c.service("web")) is not None and s.status == "stopped")
        c.scale("web", 1)
        c.wait("a ready replica", lambda: bool(c.ready("web")), timeout=30)
        (rep,) = c.ready("web")
        assert rep.ready_at is not None and rep.started_at is not None
        # the app listens ~0.3-0.6 s after its start; without the watch the next look would be 2 s after the start
        assert rep.ready_at - rep.started_at < 1.5, rep.ready_at - rep.started_at


def test_pause_ends_within_a_fast_probe_of_the_port_opening(tmp_path: Path) -> None:
    watch = StartWatch(LocalRuntime(tmp_path))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = socket.socket()
    opened: list[float] = []

    def open_late() -> None:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        opened.append(time.monotonic())

    watch.watch("127.0.0.1", port)
    timer = threading.Timer(0.5, open_late)
    timer.start()
    try:
        t0 = time.monotonic()
        watch.pause(10.0)
        woke = time.monotonic()
        assert woke - t0 < 5.0 and opened, "woken by the port opening, not by the timeout"
        assert woke - opened[0] < 0.25, woke - opened[0]
        watch.pause(10.0)  # the second wake, for a pass that found the service still busy
        assert time.monotonic() - woke < 1.0
    finally:
        timer.cancel()
        listener.close()
