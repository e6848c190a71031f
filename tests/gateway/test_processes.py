"""The gateway as real processes: streaming with bounded memory, SO_REUSEPORT workers, metrics, shutdown."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.gateway.harness import SK
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_port(port: int, timeout: float = 15) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"port {port} never opened")


def mem_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _requests_total(admin_port: int) -> int:
    """The service's request counter as the admin listener sums it over the workers (0 before any dump)."""
    text = httpx.get(f"http://127.0.0.1:{admin_port}/metrics").text
    lines = [x for x in text.splitlines() if x.startswith('arkserve_gateway_requests_total{service="svc"')]
    return sum(int(x.rsplit(" ", 1)[1]) for x in lines)


@pytest.fixture
def gateway_proc(replicas: Any, tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> tuple[subprocess.Popen[bytes], int, Any]:
        up = replicas("r")
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tests.gateway.proc", "--port", str(port), "--upstream",
                                 str(up.port), *args], cwd=ROOT)
        procs.append(proc)
        wait_port(port)
        return proc, port, up

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_50mb_chunked_upload_and_download_stream_with_bounded_memory(gateway_proc: Any) -> None:
    proc, port, _ = gateway_proc("--auth")
    size = 50 * 1024 * 1024
    piece = os.urandom(256 * 1024)
    digest = hashlib.sha256(piece * (size // len(piece))).hexdigest()
    with httpx.Client(auth=ArkAuth("AKOWNER", SK), timeout=60) as c:
        assert c.get(f"http://127.0.0.1:{port}/warm").status_code == 200
        base = mem_kb(proc.pid, "VmRSS")

        def body() -> Iterator[bytes]:  # a generator: sent chunked, signed as unsigned payload
            for _ in range(size // len(piece)):
                yield piece

        resp = c.post(f"http://127.0.0.1:{port}/upload", content=body())
        assert resp.status_code == 200, resp.text
        info = resp.json()
        assert info["length"] == size and info["sha256"] == digest
        assert info["headers"]["transfer-encoding"] == "chunked"
        got = 0
        with c.stream("GET", f"http://127.0.0.1:{port}/big={size}") as r:
            for chunk in r.iter_raw():
                got += len(chunk)
        assert got == size
    grown_mb = (mem_kb(proc.pid, "VmHWM") - base) / 1024
    assert grown_mb < 25, f"gateway memory grew by {grown_mb:.0f} MB while streaming 2 x 50 MB"


def test_sse_response_streams_event_by_event(gateway_proc: Any) -> None:
    _, port, _ = gateway_proc()
    arrivals: list[float] = []
    t0 = time.monotonic()
    with httpx.Client(timeout=10) as c, c.stream("GET", f"http://127.0.0.1:{port}/sse=20") as r:
        assert r.headers["content-type"] == "text/event-stream"
        text = b""
        for chunk in r.iter_raw():
            arrivals.append(time.monotonic() - t0)
            text += chunk
    assert text.count(b"data: ") == 20
    assert len(arrivals) >= 10 and arrivals[0] < arrivals[-1] - 0.2  # not buffered until the end


def test_two_workers_share_ports_metrics_and_log(gateway_proc: Any, tmp_path: Path) -> None:
    admin = free_port()
    log = tmp_path / "requests.jsonl"
    proc, port, _ = gateway_proc("--workers", "2", "--admin-port", str(admin), "--log", str(log))
    wait_port(admin)
    prefixes: set[str] = set()
    pids: set[int] = set()
    for i in range(60):  # a new connection each time; the kernel spreads them over both workers
        with httpx.Client() as c:
            prefixes.add(c.get(f"http://127.0.0.1:{port}/n{i}").headers["x-request-id"].split("-")[0])
            pids.add(c.get(f"http://127.0.0.1:{admin}/healthz").json()["pid"])
        if len(prefixes) == 2 and len(pids) == 2:
            break
    assert len(prefixes) == 2 and len(pids) == 2
    sent = i + 1
    deadline = time.monotonic() + 10
    while (counted := _requests_total(admin)) < sent:  # workers dump their counters every second
        assert time.monotonic() < deadline, f"the metrics count {counted} of {sent} requests after 10 s"
        time.sleep(0.1)
    assert counted == sent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(records) == sent and {r["replica"] for r in records} == {"r"}
    assert set(records[0]) == {"time", "service", "replica", "method", "path", "status", "latency_ms", "bytes_in",
                               "bytes_out", "access_key", "client", "request_id", "revision"}
