"""Stopping `arkserve up` under load: SIGTERM drains the gateway before the reconciler stops the replicas,
so every request in flight at the signal completes with 200."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from arkserve.sdk.auth import ArkAuth
from tests.e2e.conftest import Platform

CONCURRENCY = 16


@dataclass
class Call:
    start: float
    end: float = 0.0
    status: int = 0
    connection: str = ""
    error: str = ""


class SlowLoad:
    """CONCURRENCY clients on keep-alive connections, each sending one request after the other."""

    def __init__(self, url: str, auth: ArkAuth, ca: str) -> None:
        self.url, self.auth, self.ca = url, auth, ca
        self.calls: list[Call] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def in_flight(self) -> int:
        return sum(1 for c in list(self.calls) if not c.end)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=self.ca), auth=self.auth,
                                     timeout=60, limits=limits) as client:

            async def one() -> None:
                while not self.stop.is_set():
                    call = Call(time.monotonic())
                    self.calls.append(call)
                    try:
                        resp = await client.get(self.url)
                        call.status, call.connection = resp.status_code, resp.headers.get("connection", "")
                    except httpx.HTTPError as exc:
                        call.error = f"{type(exc).__name__}: {exc}"
                    call.end = time.monotonic()

            await asyncio.gather(*(one() for _ in range(CONCURRENCY)))


def _wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _admin_status(port: int) -> tuple[int, str]:
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.HTTPError:
        return 0, ""
    return resp.status_code, resp.json().get("status", "")


def test_sigterm_under_load_lets_every_in_flight_request_finish(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    p.start()
    try:
        svc = p.create("slow", 2, env={"DELAY_S": "2"})
        pids = [json.loads((p.data / "replicas" / f"ark-slow-{i['id']}.json").read_text())["pid"]
                for i in svc["instances"]]
        load = SlowLoad(svc["endpoint"] + "/", ArkAuth(p.profile.access_key, p.profile.secret_key), p.ca)
        load.thread.start()
        # steady state: a first round answered and a full second round in flight
        _wait(lambda: sum(1 for c in list(load.calls) if c.status == 200) >= CONCURRENCY
              and load.in_flight() == CONCURRENCY, 60, "the load did not reach steady state")
        assert p.proc is not None
        signalled = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        load.stop.set()  # no new requests from here on; those in flight must finish
        _wait(lambda: _admin_status(p.admin_port) == (503, "draining"), 5, "the admin /healthz never said draining")
        load.thread.join(60)
        assert not load.thread.is_alive()
        assert p.proc.wait(60) == 0, (tmp_path / "up.log").read_text()[-3000:]
        stopped_at = time.monotonic()
    finally:
        p.stop()
    before = [c for c in load.calls if c.start < signalled]
    caught = [c for c in before if c.end > signalled]
    assert len(caught) >= CONCURRENCY, "fewer requests in flight at the signal than clients"
    assert [c.error or c.status for c in before if c.status != 200] == []
    assert {c.connection for c in caught} == {"close"}  # told not to reuse a draining gateway's connection
    log = (tmp_path / "up.log").read_text()
    assert "the gateway drains in-flight requests" in log
    assert stopped_at - signalled < 30  # drained in ~2 s, not the whole grace
    assert len(pids) == 2
    for pid in pids:  # the reconciler stopped the replicas after the drain
        _wait(lambda: _gone(pid), 10, f"replica process {pid} outlived arkserve up")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_second_sigterm_cuts_the_drain_short(tmp_path: Path) -> None:
    p = Platform(tmp_path)
    p.env["ARKSERVE_GATEWAY_SHUTDOWN_GRACE_S"] = "120"
    p.start()
    try:
        svc = p.create("stuck", 1, env={"DELAY_S": "300"})
        auth = ArkAuth(p.profile.access_key, p.profile.secret_key)
        result: dict[str, object] = {}

        def call() -> None:
            with httpx.Client(verify=ssl.create_default_context(cafile=p.ca), auth=auth, timeout=300) as c:
                try:
                    result["status"] = c.get(svc["endpoint"] + "/").status_code
                except httpx.HTTPError as exc:
                    result["error"] = type(exc).__name__

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        _wait(lambda: "delaying /" in _replica_log(p, "stuck"), 30, "the request never reached the replica")
        assert p.proc is not None
        p.proc.send_signal(signal.SIGTERM)
        _wait(lambda: _admin_status(p.admin_port) == (503, "draining"), 10, "the gateway did not start draining")
        forced = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)  # the second Ctrl-C
        assert p.proc.wait(60) == 0
        assert time.monotonic() - forced < 40  # not the 120 s grace
        caller.join(10)
        assert "status" not in result  # the stuck request was cut, as asked
        # but the replicas were still stopped: none left running (it was, killed with the reconciler mid-stop)
        assert not list((p.data / "replicas").glob("*.json"))
        # and nothing of theirs is left (the log pump exits 5 s after its last spool closed)
        _wait(lambda: _processes_under(tmp_path) == [], 20, "a replica or the log pump was left running")
    finally:
        p.stop()


def _processes_under(folder: Path) -> list[str]:
    """Command lines of the live processes that name ``folder`` (a replica's sandbox names its app dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(folder) in cmd and state not in ("Z", "X") and proc.name != str(os.getpid()):
            found.append(cmd[:200])
    return found


def _replica_log(p: Platform, service: str) -> str:
    folder = p.data / "logs" / service
    return "".join(f.read_text() for f in folder.glob("*.log")) if folder.is_dir() else ""
