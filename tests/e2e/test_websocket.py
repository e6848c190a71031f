"""A WebSocket service end to end through `arkserve up`: the default TLS endpoint, a signed handshake
made with the SDK's helper, echo through the gateway, the session in the request log, and what a
rolling update does to an open session."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from arkserve.sdk import websocket_headers
from tests.e2e.conftest import Platform

WS_APP = Path(__file__).with_name("ws_app.py")


def test_a_websocket_service_through_the_platform(platform: Platform, tmp_path: Path) -> None:
    image = tmp_path / "ws-image"
    image.mkdir()
    shutil.copy(WS_APP, image / "app.py")
    svc = platform.create("chat", image=str(image), command=f"{sys.executable} app.py")
    uri = svc["endpoint"].replace("https://", "wss://") + "/ws?room=7"
    trust = ssl.create_default_context(cafile=platform.ca)
    p = platform.profile
    try:
        session = connect(uri, additional_headers=websocket_headers(uri, p.access_key, p.secret_key), ssl=trust,
                          open_timeout=30)
    except TimeoutError:  # say where it got stuck
        raise AssertionError(f"no handshake answer\n{_where(platform)}") from None
    with session as ws:
        hello = json.loads(ws.recv())
        assert hello == {"replica": svc["instances"][0]["id"], "path": "/ws?room=7"}
        for i in range(5):
            ws.send(f"frame {i}")
            assert ws.recv() == f"frame {i}"
        rid = ws.response.headers["x-request-id"] if ws.response is not None else ""
    with pytest.raises(InvalidStatus) as refused:
        try:
            connect(uri, ssl=trust, open_timeout=10)
        except TimeoutError:
            raise AssertionError(f"no answer to an unsigned handshake\n{_where(platform)}") from None
    assert refused.value.response.status_code == 401
    deadline = time.monotonic() + 10
    while True:  # the request log is written in batches
        with platform.client() as c:
            mine = [r for r in c.get("/services/chat/requests") if r["request_id"] == rid]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(mine) == 1 and mine[0]["status"] == 101 and mine[0]["replica"] == svc["instances"][0]["id"]
    assert mine[0]["path"] == "/ws?room=7" and mine[0]["access_key"] == p.access_key and mine[0]["bytes_in"] > 0

    # A rolling update drains and stops the old replica: its open WebSocket ends, and a new one lands on
    # the new replica.
    old_replica = svc["instances"][0]["id"]
    with connect(uri, additional_headers=websocket_headers(uri, p.access_key, p.secret_key), ssl=trust) as ws:
        assert json.loads(ws.recv())["replica"] == old_replica
        with platform.client() as c:
            c.patch("/services/chat", {"env": {"VERSION": "2"}})
        with pytest.raises(ConnectionClosed):
            try:
                while True:
                    ws.recv(timeout=60)
            except TimeoutError:
                raise AssertionError(f"the old replica's WebSocket outlived it\n{_where(platform)}") from None
    svc = platform.wait_ready("chat", 1)
    assert svc["instances"][0]["id"] != old_replica
    with connect(uri, additional_headers=websocket_headers(uri, p.access_key, p.secret_key), ssl=trust) as ws:
        assert json.loads(ws.recv())["replica"] == svc["instances"][0]["id"]


def _where(platform: Platform) -> str:
    """What to look at when a handshake or a close does not come: the platform's output, the replicas' logs, the
    gateway's gauges, the replica processes alive now."""
    logs = "\n".join(f.read_text()[-3000:] for f in sorted((platform.data / "logs").rglob("*.log")))
    try:
        gauges = "\n".join(line for line in httpx.get(f"http://127.0.0.1:{platform.admin_port}/metrics", timeout=5)
                           .text.splitlines() if line.startswith(("arkserve_gateway_inflight", "arkserve_gateway_queue",
                                                                 "arkserve_gateway_upstream", "arkserve_gateway_auth",
                                                                 "arkserve_gateway_requests_total")))
    except httpx.HTTPError as exc:
        gauges = f"(no metrics: {exc})"
    procs = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,etime,cmd"], capture_output=True, text=True).stdout
    mine = "\n".join(line[:200] for line in procs.splitlines() if str(platform.tmp) in line)
    return (f"up.log:\n{(platform.tmp / 'up.log').read_text()[-6000:]}\nreplica logs:\n{logs}\n"
            f"gateway gauges:\n{gauges}\nprocesses:\n{mine}")
