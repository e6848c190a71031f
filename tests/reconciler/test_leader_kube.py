"""The Kubernetes Lease through the real ``kubernetes`` client, against a loopback stand-in for the API server's
Lease endpoints (no API server can run here): create, renew, take-over after the duration without a renewal,
409 on a stale resourceVersion, 403 as a clear temporary error, release. Every Lease the client sends is
validated against Kubernetes' own schema (kubernetes-validate, strict)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from arkserve.errors import TemporaryError
from arkserve.leases.base import Holding
from arkserve.leases.elector import Elector
from arkserve.leases.kube import KubeLease

PREFIX = "/apis/coordination.k8s.io/v1/namespaces/ark/leases"
K8S = kubernetes_validate.latest_version()  # the newest schemas the library ships (offline)


class FakeLeaseApi:
    """The API server's Lease endpoints: optimistic concurrency by resourceVersion, Status bodies on errors."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.sent: list[dict[str, Any]] = []  # every body the client sent
        self.refuse = 0  # answer this status to everything (403: RBAC missing)
        self.before_write: Callable[[], None] | None = None
        self.lock = threading.Lock()

    def status(self, code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
        return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                      "reason": reason, "code": code}

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        if self.refuse:
            return self.status(self.refuse, "Forbidden", 'leases.coordination.k8s.io is forbidden: User '
                               '"system:serviceaccount:ark:default" cannot get resource "leases"')
        if body is not None:
            self.sent.append(body)
            kubernetes_validate.validate(body, K8S, strict=True)
            if self.before_write is not None:
                hook, self.before_write = self.before_write, None
                hook()
        with self.lock:
            if method == "GET" and path.startswith(PREFIX + "/"):
                name = path.rsplit("/", 1)[1]
                if name not in self.leases:
                    return self.status(404, "NotFound", f'leases.coordination.k8s.io "{name}" not found')
                return 200, self.leases[name]
            if method == "POST" and path == PREFIX and body is not None:
                name = body["metadata"]["name"]
                if name in self.leases:
                    return self.status(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists')
                return 201, self.store(name, body, created=True)
            if method == "PUT" and path.startswith(PREFIX + "/") and body is not None:
                name = path.rsplit("/", 1)[1]
                current = self.leases.get(name)
                if current is None:
                    return self.status(404, "NotFound", name)
                if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                    return self.status(409, "Conflict", "the object has been modified; please apply your changes "
                                       "to the latest version and try again")
                return 200, self.store(name, body)
        return self.status(404, "NotFound", path)

    def store(self, name: str, body: dict[str, Any], created: bool = False) -> dict[str, Any]:
        self.version += 1
        obj = json.loads(json.dumps(body))
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.version)
        meta["namespace"] = "ark"
        if created:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj["apiVersion"], obj["kind"] = "coordination.k8s.io/v1", "Lease"
        self.leases[name] = obj
        return obj

    def bump(self, name: str) -> None:
        """Another writer renewed the Lease meanwhile."""
        with self.lock:
            self.store(name, self.leases[name])


@pytest.fixture
def server() -> Iterator[tuple[FakeLeaseApi, Any]]:
    fake = FakeLeaseApi()

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            code, out = fake.handle(self.command, self.path.split("?", 1)[0], body)
            data = json.dumps(out).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _do

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    cfg = client.Configuration()
    cfg.host = f"http://127.0.0.1:{httpd.server_address[1]}"
    api = client.CoordinationV1Api(client.ApiClient(cfg))
    try:
        yield fake, api
    finally:
        httpd.shutdown()
        httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_create_renew_take_over_and_release(server: tuple[FakeLeaseApi, Any]) -> None:
    fake, api = server
    clock_b = Clock()
    a, b = KubeLease(api, "ark"), KubeLease(api, "ark", clock=clock_b)
    assert a.acquire("A", 10) == Holding("A", 1, 10)
    lease = fake.leases["arkserve-reconciler"]
    assert lease["spec"]["holderIdentity"] == "A" and lease["spec"]["leaseDurationSeconds"] == 10
    assert b.acquire("B", 10).holder == "A"
    clock_b.t += 9
    assert a.acquire("A", 10) == Holding("A", 1, 10)  # a renewal: a new resourceVersion
    clock_b.t += 2
    assert b.acquire("B", 10).holder == "A"  # 11 s since B first looked, but A renewed 2 s ago
    clock_b.t += 10
    assert b.acquire("B", 10) == Holding("B", 2, 10)  # no renewal for a lease duration: B takes over
    spec = fake.leases["arkserve-reconciler"]["spec"]
    assert spec["holderIdentity"] == "B" and spec["leaseTransitions"] == 2
    assert a.acquire("A", 10).holder == "B"  # the old leader learns it lost
    b.release("B", 2)
    assert not fake.leases["arkserve-reconciler"]["spec"].get("holderIdentity")
    assert a.acquire("A", 10) == Holding("A", 3, 10)  # released: free at once
    assert len(fake.sent) == 5  # create, renew, take-over, release, take: each validated


def test_a_long_dead_holder_is_replaced_at_once(server: tuple[FakeLeaseApi, Any]) -> None:
    fake, api = server
    KubeLease(api, "ark").acquire("old", 10)
    old = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fake.leases["arkserve-reconciler"]["spec"]["renewTime"] = old  # as a server returns a stale MicroTime
    assert KubeLease(api, "ark").acquire("new", 10) == Holding("new", 2, 10)


def test_a_stale_resource_version_loses(server: tuple[FakeLeaseApi, Any]) -> None:
    fake, api = server
    clock = Clock()
    KubeLease(api, "ark").acquire("A", 10)
    b = KubeLease(api, "ark", clock=clock)
    assert b.acquire("B", 10).holder == "A"
    clock.t += 11
    fake.before_write = lambda: fake.bump("arkserve-reconciler")  # A renews between B's read and B's write
    assert b.acquire("B", 10).holder == "A"  # the 409 tells B it lost the race
    assert fake.leases["arkserve-reconciler"]["spec"]["holderIdentity"] == "A"


def test_forbidden_is_a_temporary_error_and_the_elector_survives(server: tuple[FakeLeaseApi, Any]) -> None:
    fake, api = server
    fake.refuse = 403
    lease = KubeLease(api, "ark")
    with pytest.raises(TemporaryError, match="403 Forbidden"):
        lease.acquire("A", 10)
    elector = Elector(lease, "A", duration_s=2, renew_every_s=0.5)
    assert not elector.step()  # logged, not raised: the reconciler waits for RBAC to be fixed
    fake.refuse = 0
    assert elector.step() and elector.token == 1


def test_two_electors_on_the_lease_one_leads_and_the_other_takes_over(server: tuple[FakeLeaseApi, Any]) -> None:
    _fake, api = server
    a = Elector(KubeLease(api, "ark"), "A", duration_s=1, renew_every_s=0.2).start()
    b = Elector(KubeLease(api, "ark"), "B", duration_s=1, renew_every_s=0.05)
    try:
        deadline = time.monotonic() + 5
        while not a.is_leader():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        b.start()
        time.sleep(0.3)
        assert a.is_leader() and not b.is_leader()
        a.stop(release=False)  # the leader dies without a word
        died = time.monotonic()
        while not b.is_leader():
            assert time.monotonic() - died < 3, "B never took over"
            time.sleep(0.01)
        assert b.token == 2
    finally:
        a.stop(release=False)
        b.stop()
