"""The reconciler under election (arkserve/reconciler/leader.py), in one process on a real SQLite store: runtime
calls that change replicas are refused once the lease is lost, and :func:`lead` stops its reconciler and meter
when the lease lapses, waits, and starts a fresh one (adoption first) when it leads again."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from arkserve.errors import RuntimeUnavailable, ValidationFailed
from arkserve.leases.elector import Elector
from arkserve.leases.factory import resolve
from arkserve.leases.store import StoreLease
from arkserve.reconciler.leader import FencedRuntime, lead
from arkserve.reconciler.loop import Reconciler
from arkserve.runtimes.base import ReplicaSpec
from arkserve.store.db import open_store
from tests.reconciler.conftest import FAST
from tests.reconciler.test_leader_lease import Flaky
from tests.runtimes.fake import FakeRuntime


def _wait(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _spec(replica: str) -> ReplicaSpec:
    return ReplicaSpec(service="svc", replica=replica, revision="r", image="img", port=8000, command="")


def test_a_fenced_runtime_refuses_to_start_or_stop_once_not_leading() -> None:
    leading = [True]
    fake = FakeRuntime()
    rt = FencedRuntime(fake, lambda: leading[0])
    info = rt.start(_spec("r0000a1"))
    assert [i.replica for i in rt.list()] == ["r0000a1"] and rt.name == fake.name
    leading[0] = False
    with pytest.raises(RuntimeUnavailable, match="not the leader"):
        rt.start(_spec("r0000a2"))
    with pytest.raises(RuntimeUnavailable, match="not the leader"):
        rt.stop("svc", "r0000a1")
    assert [i.replica for i in rt.list()] == [info.replica]  # reads still work; nothing changed


class FakeMeter:
    def __init__(self) -> None:
        self.stop_event, self.thread = threading.Event(), None
        self.final_pass = False

    def start(self) -> FakeMeter:
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.final_pass = True


def test_lead_stops_acting_when_the_lease_lapses_and_resumes_when_it_leads_again(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/arkserve.db")
    flaky = Flaky(StoreLease(store))
    elector = Elector(flaky, "A", duration_s=1.0, renew_every_s=0.1)
    made: list[Reconciler] = []
    meters: list[FakeMeter] = []
    runtime = FakeRuntime()

    def make(leading: Any) -> Reconciler:
        made.append(Reconciler(store, FencedRuntime(runtime, leading), tmp_path, FAST))
        return made[-1]

    def make_meter() -> FakeMeter:
        meters.append(FakeMeter())
        return meters[-1]

    stop = threading.Event()
    result: list[Reconciler | None] = []
    thread = threading.Thread(target=lambda: result.append(lead(elector, stop, make, make_meter)), daemon=True)
    thread.start()
    try:
        _wait(lambda: len(made) == 1)
        flaky.broken = True  # renewals fail: within 3/4 of the lease the reconciler must stop
        broke = time.monotonic()
        _wait(lambda: made[0].stop_event.is_set() and meters[0].stop_event.is_set())
        assert time.monotonic() - broke < 1.0
        assert not meters[0].final_pass  # no last meter pass once the lease is lost
        assert len(made) == 1 and not elector.is_leader()
        flaky.broken = False
        _wait(lambda: len(made) == 2)  # leads again: a fresh reconciler (it adopts first)
    finally:
        stop.set()
        thread.join(10)
        elector.stop()
        store.dispose()
    assert result == [made[1]] and meters[1].final_pass  # stopped while leading: the caller may stop replicas


@pytest.mark.parametrize(("kind", "url", "runtime", "expected"), [
    ("auto", "sqlite:////tmp/x/arkserve.db", "local", "off"),  # the embedded `arkserve up`: no election
    ("auto", "", "docker", "off"),
    ("auto", "postgresql://u@db/ark", "local", "store"),  # several hosts on one PostgreSQL
    ("auto", "postgresql://u@db/ark", "kubernetes", "kubernetes"),
    ("store", "sqlite:////tmp/x/arkserve.db", "local", "store"),  # asked for: given
    ("off", "postgresql://u@db/ark", "kubernetes", "off"),
])
def test_auto_picks_the_lease_from_the_store_and_the_runtime(kind: str, url: str, runtime: str,
                                                             expected: str) -> None:
    assert resolve(kind, url, runtime) == expected


def test_an_unknown_election_kind_is_refused() -> None:
    with pytest.raises(ValidationFailed, match=r"reconciler\.leader_election"):
        resolve("etcd", "", "local")
