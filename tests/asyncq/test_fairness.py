"""One service's long asynchronous requests do not hold up another's: the dispatcher keeps at most three quarters
of its slots (``asyncq.concurrency`` less a quarter, at least 1) in flight for one service, so another service's
request starts at once while a slot is free. On the store (SQLite and PostgreSQL) the claim leaves out the services
that have their share, and so does the idle check; through a real dispatcher, with a gateway on loopback that holds
one service's requests until released."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from arkserve import settings
from arkserve.asyncq.dispatcher import Dispatcher
from arkserve.store import async_requests as q
from arkserve.store import services, users
from arkserve.store.db import Store
from arkserve.store.tables import services as services_table


def _submit(store: Store, rid: str, service: str, t: float, path: str = "/p") -> None:
    with store.begin() as conn:
        q.insert_request(conn, {"id": rid, "service": service, "method": "POST", "path": path, "headers": [],
                                "body": b"hi", "body_size": 2, "created_at": t, "callback_url": None})


def test_a_claim_leaves_a_service_at_its_share_out(store: Store) -> None:
    for i in range(10):
        _submit(store, f"ar_a{i}", "a", 100.0 + i)  # a's backlog, all older than b's one request
    _submit(store, "ar_b0", "b", 200.0)
    with store.begin() as conn:
        first = q.claim(conn, "D", 300.0, 10.0, 8, per_service=2)
    assert [r["id"] for r in first] == ["ar_a0", "ar_a1", "ar_b0"]  # b's behind a's backlog, claimed all the same
    with store.read() as conn:
        assert q.anything_due(conn, 300.0) == (True, False)
        assert q.anything_due(conn, 300.0, ["a"]) == (False, False)  # only a's left: the pass takes no write lock
    with store.begin() as conn:
        assert q.claim(conn, "D", 300.0, 10.0, 8, per_service=2, busy={"a": 2, "b": 1}) == []
        assert [r["id"] for r in q.claim(conn, "D", 300.0, 10.0, 8, per_service=2, busy={"a": 1})] == ["ar_a2"]
        assert len(q.claim(conn, "D", 300.0, 10.0, 8)) == 7  # no share asked: oldest first, up to the limit


class _Gateway(BaseHTTPRequestHandler):
    """Stands for the gateway on loopback: ``/slow`` waits until ``release`` is set, anything else answers at
    once; ``inflight`` counts the requests being answered, per path."""

    release = threading.Event()
    lock = threading.Lock()
    inflight: dict[str, int] = {}
    most: dict[str, int] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.lock:
            self.inflight[self.path] = self.inflight.get(self.path, 0) + 1
            self.most[self.path] = max(self.most.get(self.path, 0), self.inflight[self.path])
        try:
            if self.path == "/slow":
                self.release.wait(30)
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        finally:
            with self.lock:
                self.inflight[self.path] -= 1

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateways() -> Iterator[list[int]]:
    """Two listeners (a service's gateway port is its own)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Gateway) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield [server.server_address[1] for server in servers]
    finally:
        _Gateway.release.set()
        for server in servers:
            server.shutdown()
            server.server_close()


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def _status(store: Store, rid: str) -> str:
    with store.read() as conn:
        row = q.get(conn, rid)
    assert row is not None
    return str(row["status"])


def test_another_services_request_starts_while_one_service_holds_long_ones(store: Store, tmp_path: Path,
                                                                         gateways: list[int]) -> None:
    with store.begin() as conn:
        owner = users.create(conn, "owner", "h", "user").id
        for name, port in zip(("alice-svc", "bob-svc"), gateways, strict=True):
            services.create(conn, name, owner, {"image": "i", "port": 1, "command": "c"}, 1, None)
            conn.execute(update(services_table).where(services_table.c.name == name).values(gateway_port=port))
    t0 = time.time()
    for i in range(10):
        _submit(store, f"ar_slow{i}", "alice-svc", t0 + i / 1000, "/slow")
    _submit(store, "ar_fast", "bob-svc", t0 + 1, "/fast")
    s = settings.load({"data_dir": str(tmp_path), "gateway.tls": False, "asyncq.concurrency": 8}, env={})
    _Gateway.release.clear()
    _Gateway.inflight.clear()
    _Gateway.most.clear()
    dispatcher = Dispatcher(store, s, b"k" * 32, poll_s=0.02)
    runner = threading.Thread(target=dispatcher.run, daemon=True)
    runner.start()
    try:
        _wait(lambda: _status(store, "ar_fast") == "succeeded", 10, "bob's request, behind alice's long ones")
        assert _Gateway.inflight.get("/slow") == 6  # alice's share (8 less a quarter), still held
        _Gateway.release.set()
        _wait(lambda: all(_status(store, f"ar_slow{i}") == "succeeded" for i in range(10)), 20, "alice's requests")
        assert _Gateway.most["/slow"] == 6
    finally:
        _Gateway.release.set()
        dispatcher.stop(grace_s=5)
        runner.join(10)
