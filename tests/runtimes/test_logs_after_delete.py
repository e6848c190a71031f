"""A deleted service's output that the local runtime's log pump had not read yet never shows up in the logs of a
later service of the same name (another user's), whether the pump was stopped, killed or behind during the deletion.

Real processes: a reconciler over a real store and the local runtime, the real pump process (SIGSTOPped while alice's
replica prints a secret and her service is deleted, then killed or resumed once bob's service took the name); and
the pump's own passes over a spool listed just before the deletion discarded it."""

from __future__ import annotations

import os
import signal
import urllib.request
from contextlib import suppress
from pathlib import Path

import pytest

from arkserve.logs import LogWriter, log_dir_for, log_path, read_logs, remove_service_logs
from arkserve.runtimes import spool
from arkserve.runtimes.local import LocalRuntime
from arkserve.runtimes.logpump import Pump
from arkserve.store import users as user_store
from tests.reconciler.conftest import running_cluster

from .conftest import wait_until
from .test_logpump import pumps

SECRET = "ALICE-PRIVATE-TOKEN=sk-live-123456"


@pytest.mark.parametrize("pump_then", ["killed", "resumed"])
def test_a_stopped_pump_never_writes_a_deleted_services_output_into_the_next_one_of_that_name(
        tmp_path: Path, pump_then: str) -> None:
    with running_cluster(tmp_path, LocalRuntime) as c:
        logs, spools = log_dir_for(c.data_dir), spool.spool_dir(spool.pump_dir_for(c.data_dir))
        c.create("other", 1)  # keeps a pump busy
        c.wait("other's replica ready", lambda: len(c.ready("other")) == 1)
        wait_until(lambda: read_logs(logs, "other"), timeout=20, what="other's first line (a pump runs)")
        (pid,) = pumps(c.data_dir)
        os.kill(pid, signal.SIGSTOP)  # the pump falls behind: none of alice's output is read
        try:
            c.create("leak", 1)  # alice's
            c.wait("alice's replica ready", lambda: len(c.ready("leak")) == 1)
            (alice,) = c.ready("leak")
            with urllib.request.urlopen(f"http://{alice.host}:{alice.port}/{SECRET}", timeout=5) as resp:
                resp.read()  # the app prints each request it answers
            wait_until(lambda: any(SECRET.encode() in p.read_bytes() for p in spools.glob(f"leak.{alice.id}.*.out")),
                       what="the secret in alice's spool, unread")
            c.delete("leak")
            c.wait("alice's service gone", lambda: c.service("leak") is None, timeout=30)
            with c.store.begin() as conn:
                c.owner_id = user_store.create(conn, "bob", "h", "user").id
            c.create("leak", 0)  # bob's: the name is free again
            os.kill(pid, signal.SIGKILL if pump_then == "killed" else signal.SIGCONT)
        finally:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)  # never leave a stopped pump behind
        c.scale("leak", 1)  # killed: bob's replica's start brings a new pump, which finds what is left
        c.wait("bob's replica ready", lambda: len(c.ready("leak")) == 1)
        (bob,) = c.ready("leak")
        wait_until(lambda: any(x.replica == bob.id for x in read_logs(logs, "leak")), timeout=20,
                   what="bob's first line in his log")
        wait_until(lambda: not list(spools.glob(f"leak.{alice.id}.*")), what="alice's spools gone")
        lines = read_logs(logs, "leak") + read_logs(logs, "leak", previous=True)
        assert lines and {x.replica for x in lines} == {bob.id}, [x.format() for x in lines]
        assert not [p for p in logs.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


@pytest.mark.parametrize("listed_before", [True, False])
@pytest.mark.parametrize("cached", [False, True])
def test_a_pump_holding_a_discarded_spool_writes_none_of_it_and_lets_it_go(tmp_path: Path, cached: bool,
                                                                           listed_before: bool) -> None:
    """The pump holds alice's spool open (and a writer on her log once it wrote a line of it) while the deletion
    runs; it stopped either between listing the spools and reading them (``listed_before``) or between passes.
    Its next passes write nothing of it anywhere, and let go of the spool's descriptor and of the writer."""
    pump_dir, logs = spool.pump_dir_for(tmp_path), log_dir_for(tmp_path)
    stem, fd = spool.open_spool(pump_dir, "leak", "ra11ce00")
    pump = Pump(pump_dir, logs)
    try:
        if cached:
            os.write(fd, b"alice started\n")
        pump.step(os.listdir(spool.spool_dir(pump_dir)), None)  # takes the spool up (and the line: a cached writer)
        assert stem in pump.open and bool(pump.writers) == cached
        os.write(fd, f"{SECRET}\n".encode())
        listed = os.listdir(spool.spool_dir(pump_dir))
        spool.discard_service(pump_dir, "leak")  # the deletion (worker._status): spools, then logs, then the name
        remove_service_logs(logs, "leak")
        bob = LogWriter(log_path(logs, "leak", "rb0b0000"), "rb0b0000")
        bob.write("bob's own line")
        bob.close()
        if listed_before:
            pump.step(listed, None)
        pump.step(os.listdir(spool.spool_dir(pump_dir)), None)
        assert [x.text for x in read_logs(logs, "leak")] == ["bob's own line"]
        assert sorted(p.name for p in (logs / "leak").iterdir()) == ["rb0b0000.log"]
        assert pump.open == {} and pump.writers == {}
        assert os.listdir(spool.spool_dir(pump_dir)) == []
    finally:
        os.close(fd)
        for sp in pump.open.values():
            os.close(sp.fd)
        for w in pump.writers.values():
            w.close()
