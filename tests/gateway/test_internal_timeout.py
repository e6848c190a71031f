"""The dispatcher's requests (a verified ``X-Ark-Internal``) wait for the replica up to the gateway's
``async_request_timeout_s`` (``asyncq.request_timeout_s``), not the service's ``request_timeout_s``: an asynchronous
job longer than the service's timeout succeeds, while an ordinary request, or one whose internal marker is forged,
still gets the service's 504.

Real parts: a gateway on its own loop with the store-backed queue (SQLite), a replica on loopback, and the
dispatcher's own sender (``arkserve.asyncq.delivery.Sender``) for the internal requests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from arkserve import settings
from arkserve.asyncq.delivery import Outcome, Sender
from arkserve.asyncq.intake import StoreQueue
from arkserve.domain.async_requests import internal_token
from arkserve.domain.routing import RoutingSnapshot
from arkserve.gateway import Gateway, GatewayConfig, MemorySink, StaticSource
from arkserve.sdk.auth import ArkAuth
from arkserve.store.db import open_store
from tests.gateway.harness import SK, Replica, route, snapshot
from tests.live import free_port

MASTER = b"m" * 32
ROUTE_TIMEOUT_S = 0.5  # the service's request_timeout_s
ASYNC_TIMEOUT_S = 3.0  # the gateway's async_request_timeout_s
SLOW_S = 1.5  # the replica's answer time: past the service's timeout, within the asynchronous one


class AsyncGateway:
    """A gateway with asynchronous inference on (the store-backed queue), on a uvloop in a background thread."""

    def __init__(self, snap: RoutingSnapshot, data_dir: Path, a: settings.AsyncSettings | None = None) -> None:
        self.store = open_store(f"sqlite:///{data_dir}/arkserve.db")
        self.queue = StoreQueue(self.store, data_dir, a or settings.AsyncSettings(), MASTER, depth_every_s=3600)
        self.sink = MemorySink()
        self.loop = uvloop.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        # the gateway suite's quick settings (conftest.FAST), and a short asynchronous timeout
        config = GatewayConfig(admin_port=0, tick_s=0.05, snapshot_poll_s=0.1, async_request_timeout_s=ASYNC_TIMEOUT_S)
        self.gw = Gateway(config, StaticSource(snap), self.sink, None, None, None, self.queue)
        asyncio.run_coroutine_threadsafe(self.gw.start(), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gw.stop(grace_s=2.0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.queue.close()
        self.store.dispose()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    replica = Replica("r1")
    port, public = free_port(), free_port()
    snap = snapshot(1, route("svc", [replica.upstream()], port, request_timeout_s=ROUTE_TIMEOUT_S),
                    route("pub", [replica.upstream()], public, auth=False, request_timeout_s=ROUTE_TIMEOUT_S))
    g = AsyncGateway(snap, tmp_path)
    s = settings.load({"data_dir": str(tmp_path), "asyncq.request_timeout_s": 30, "gateway.tls": False,
                       "gateway.host": "127.0.0.1"}, env={})
    senders = [Sender(s, internal_token(MASTER)), Sender(s, internal_token(b"not-the-master-key" * 2))]
    try:
        yield {"port": port, "public": public, "gateway": g, "dispatcher": senders[0], "forger": senders[1]}
    finally:
        for sender in senders:
            sender.close()
        g.close()
        replica.close()


def _row(path: str, n: int) -> dict[str, Any]:
    return {"id": f"ar_{n:032x}", "service": "svc", "method": "POST", "path": path, "headers": [], "body": b"job",
            "body_file": None, "body_size": 3, "access_key": "AKOWNER"}


def _timed(send: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    out = send()
    return out, time.monotonic() - t0


def test_a_dispatcher_request_outlives_the_services_timeout(setup: dict[str, Any]) -> None:
    port, dispatcher = setup["port"], setup["dispatcher"]
    out, took = _timed(lambda: dispatcher.send(_row(f"/slow={SLOW_S}", 1), port))
    assert isinstance(out, Outcome) and out.kind == "result" and out.status == 200, out.error
    assert took >= SLOW_S
    sink = setup["gateway"].sink
    deadline = time.monotonic() + 10
    while not sink.records:  # written to the log just after the response
        assert time.monotonic() < deadline, "no request log record"
        time.sleep(0.01)
    assert [(r.status, r.access_key) for r in sink.records] == [(200, "AKOWNER")]
    # still bounded: by the gateway's asynchronous request timeout, named in the error
    out, took = _timed(lambda: dispatcher.send(_row(f"/slow={ASYNC_TIMEOUT_S + 5}", 2), port))
    assert out.kind == "fail" and out.error.startswith("UpstreamTimeout") and f"within {ASYNC_TIMEOUT_S:g} s" in \
        out.error, out.error
    assert ASYNC_TIMEOUT_S - 0.5 <= took < ASYNC_TIMEOUT_S + 4  # the gateway's clock moves by ticks


def test_an_ordinary_request_keeps_the_services_timeout(setup: dict[str, Any]) -> None:
    with httpx.Client(auth=ArkAuth("AKOWNER", SK), timeout=30) as c:
        t0 = time.monotonic()
        r = c.post(f"http://127.0.0.1:{setup['port']}/slow={SLOW_S}", content=b"job")
        assert r.status_code == 504 and r.json()["code"] == "UpstreamTimeout", r.text
        assert f"within {ROUTE_TIMEOUT_S:g} s" in r.json()["message"] and r.json()["request_id"]
        assert time.monotonic() - t0 < SLOW_S


def test_a_forged_internal_marker_gets_the_ordinary_timeout_or_is_refused(setup: dict[str, Any]) -> None:
    port, public, forger = setup["port"], setup["public"], setup["forger"]
    forged = {"X-Ark-Internal": internal_token(b"not-the-master-key" * 2).decode(), "X-Ark-Internal-Key": "AKOWNER"}
    with httpx.Client(timeout=30) as c:
        # unsigned, on a service that needs a signature: refused, the marker does not stand in for one
        r = c.post(f"http://127.0.0.1:{port}/slow={SLOW_S}", content=b"job", headers=forged)
        assert r.status_code == 401 and r.json()["code"] == "MissingAuthorization", r.text
        # signed: an ordinary request, with the service's timeout
        r = c.post(f"http://127.0.0.1:{port}/slow={SLOW_S}", content=b"job", headers=forged,
                   auth=ArkAuth("AKOWNER", SK))
        assert r.status_code == 504 and f"within {ROUTE_TIMEOUT_S:g} s" in r.json()["message"], r.text
    # a public service: anyone may call it, but a wrong token buys no longer wait
    out, took = _timed(lambda: forger.send(_row(f"/slow={SLOW_S}", 3), public))
    assert out.kind == "fail" and out.error == \
        f"UpstreamTimeout: the replica did not answer within {ROUTE_TIMEOUT_S:g} s", out.error
    assert took < SLOW_S
    # the dispatcher's headers with a wrong token, on a signed service: refused outright (no signature)
    out = forger.send(_row(f"/slow={SLOW_S}", 4), port)
    assert out.kind == "result" and out.status == 401, (out.kind, out.status, out.error)


def test_a_forged_internal_marker_does_not_switch_the_asynchronous_intake_off(setup: dict[str, Any]) -> None:
    """A wrong X-Ark-Internal is no marker: X-Ark-Async is still stored and answered 202, and GET /async/<id> is
    still the gateway's (before, any value sent both straight to the replica)."""
    base = f"http://127.0.0.1:{setup['public']}"
    forged = {"x-ark-internal": "x"}
    r = httpx.post(f"{base}/job", content=b"work", headers={"x-ark-async": "true", **forged}, timeout=10)
    assert r.status_code == 202 and r.json()["id"].startswith("ar_"), r.text
    r = httpx.get(f"{base}/async/ar_{0:032x}", headers=forged, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "AsyncRequestNotFound", r.text


def test_a_user_past_the_queued_bytes_bound_gets_429_not_503(tmp_path: Path) -> None:
    """asyncq.user_queued_bytes is the client's own bound: 429 AsyncQueueFull with Retry-After and the JSON error,
    not the 503 'store unavailable, try again' of an outage."""
    replica = Replica("r1")
    public = free_port()
    g = AsyncGateway(snapshot(1, route("pub", [replica.upstream()], public, auth=False)), tmp_path,
                     settings.AsyncSettings(user_queued_bytes=1000))
    try:
        url = f"http://127.0.0.1:{public}/async/job"
        assert httpx.post(url, content=b"x" * 900, timeout=10).status_code == 202
        r = httpx.post(url, content=b"x" * 900, timeout=10)
        assert r.status_code == 429 and r.headers["retry-after"] == "5", r.text
        assert r.json()["code"] == "AsyncQueueFull" and r.json()["request_id"] and "1000" in r.json()["message"]
    finally:
        g.close()
        replica.close()
