"""Integration: snapshot swaps, draining, retries, queueing and timeouts, all on real sockets."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from arkserve.domain.routing import Upstream
from arkserve.gateway import BatchingSink
from arkserve.sdk.auth import ArkAuth
from tests.gateway.harness import SK, RawReplica, route, snapshot
from tests.live import free_port

AUTH = ArkAuth("AKOWNER", SK)


def url(port: int, path: str = "/") -> str:
    return f"http://127.0.0.1:{port}{path}"


def queue_depth(g: Any, service: str = "svc") -> int:
    """Requests waiting for a replica of ``service`` (the gateway's queue_depth gauge)."""
    metrics = httpx.get(f"http://127.0.0.1:{g.gw.admin_port}/metrics").text
    prefix = f'arkserve_gateway_queue_depth{{service="{service}"}} '
    return next((int(x.removeprefix(prefix)) for x in metrics.splitlines() if x.startswith(prefix)), 0)


def wait_for(what: str, cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_removed_replica_drains_its_slow_request(replicas: Any, gateway: Any) -> None:
    a, b = replicas("a"), replicas("b")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [a.upstream()], port)))
    result: dict[str, Any] = {}

    def slow() -> None:
        result["resp"] = httpx.get(url(port, "/slow=1.0"), auth=AUTH, timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    while "/slow=1.0" not in a.hits and time.monotonic() < deadline:
        time.sleep(0.01)
    g.publish(snapshot(2, route("svc", [b.upstream()], port)))  # a leaves routing mid-request
    with httpx.Client(auth=AUTH) as c:
        assert {c.get(url(port, "/after")).json()["replica"] for _ in range(5)} == {"b"}
    t.join(10)
    assert result["resp"].status_code == 200 and result["resp"].json()["replica"] == "a"
    assert a.hits == ["/slow=1.0"]


def test_refused_replica_is_retried_elsewhere_with_no_client_errors(replicas: Any, gateway: Any) -> None:
    good = replicas("good")
    dead = Upstream("dead", "127.0.0.1", free_port())  # nothing listens there
    port = free_port()
    g = gateway(snapshot(1, route("svc", [dead, good.upstream()], port)))
    with httpx.Client(auth=AUTH) as c:
        statuses = [c.get(url(port, f"/{i}")).status_code for i in range(20)]
    assert statuses == [200] * 20
    assert len(good.hits) == 20
    assert all(r.replica == "good" for r in g.sink.records)
    metrics = httpx.get(f"http://127.0.0.1:{g.gw.admin_port}/metrics").text
    assert 'arkserve_gateway_upstream_errors_total{service="svc",kind="connect"}' in metrics


def test_waits_for_a_replica_then_succeeds(replicas: Any, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("svc", [], port)))
    a = replicas("a")
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(resp=httpx.get(url(port, "/w"), auth=AUTH, timeout=10)))
    t.start()
    wait_for("the request in the queue", lambda: queue_depth(g) == 1)
    assert "resp" not in result
    g.publish(snapshot(2, route("svc", [a.upstream()], port)))
    t.join(10)
    assert result["resp"].status_code == 200 and result["resp"].json()["replica"] == "a"


def test_queue_timeout_is_503_with_retry_after(gateway: Any) -> None:
    port = free_port()
    gateway(snapshot(1, route("svc", [], port)), queue_timeout_s=0.3)
    t0 = time.monotonic()
    resp = httpx.get(url(port, "/"), auth=AUTH, timeout=10)
    assert 0.25 <= time.monotonic() - t0 < 3
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    assert resp.json()["code"] == "NoReplicaAvailable"


def test_a_failed_service_without_replicas_is_answered_at_once(replicas: Any, gateway: Any) -> None:
    port = free_port()
    g = gateway(snapshot(1, route("svc", [], port, failing="CrashLoop")), queue_timeout_s=30)
    t0 = time.monotonic()
    resp = httpx.get(url(port, "/"), auth=AUTH, timeout=10)
    assert time.monotonic() - t0 < 2  # not the 30 s queue timeout
    assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
    err = resp.json()
    assert err["code"] == "ServiceFailing" and "(CrashLoop)" in err["message"]
    # a request already waiting when the service fails is answered then, not at the queue timeout
    g.publish(snapshot(2, route("svc", [], port)))
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(resp=httpx.get(url(port, "/w"), auth=AUTH, timeout=10)))
    t.start()
    wait_for("the request in the queue", lambda: queue_depth(g) == 1)
    assert "resp" not in result
    g.publish(snapshot(3, route("svc", [], port, failing="ImageNotFound")))
    t.join(5)
    assert result["resp"].status_code == 503 and result["resp"].json()["code"] == "ServiceFailing"
    # once a replica is ready again it serves, even before the status has caught up
    a = replicas("a")
    g.publish(snapshot(4, route("svc", [a.upstream()], port, failing="CrashLoop")))
    assert httpx.get(url(port, "/"), auth=AUTH, timeout=10).json()["replica"] == "a"


def test_full_queue_is_immediate_503(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [a.upstream()], port, max_concurrency=1)), queue_max=1, queue_timeout_s=5)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        httpx.get(url(port, "/slow=1.0"), auth=AUTH, timeout=10).status_code)) for _ in range(2)]
    threads[0].start()
    wait_for("the first request at the replica", lambda: a.hits == ["/slow=1.0"])  # it holds the only slot
    threads[1].start()
    wait_for("the second request in the queue", lambda: queue_depth(g) == 1)
    t0 = time.monotonic()
    resp = httpx.get(url(port, "/x"), auth=AUTH, timeout=10)
    assert resp.status_code == 503 and time.monotonic() - t0 < 0.5
    assert resp.headers["retry-after"] == "1"
    assert resp.json()["code"] == "NoReplicaAvailable" and "queue is full" in resp.json()["message"]
    for t in threads:
        t.join(10)
    assert sorted(results) == [200, 200]  # the queued one got the slot when it freed
    assert "/x" not in a.hits


def test_request_timeout_is_504(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [a.upstream()], port, request_timeout_s=0.3)))
    resp = httpx.get(url(port, "/slow=2"), auth=AUTH, timeout=10)
    assert resp.status_code == 504 and resp.json()["code"] == "UpstreamTimeout"
    assert g.sink.records[-1].status == 504 and g.sink.records[-1].replica == "a"
    assert httpx.get(url(port, "/ok"), auth=AUTH, timeout=10).status_code == 200


def test_listeners_follow_the_snapshot(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    p1, p2 = free_port(), free_port()
    g = gateway(snapshot(1, route("one", [a.upstream()], p1)))
    assert g.gw.ports == [p1]
    g.publish(snapshot(2, route("one", [a.upstream()], p1), route("two", [a.upstream()], p2, auth=False)))
    assert g.gw.ports == sorted([p1, p2])
    assert httpx.get(url(p2, "/two")).status_code == 200
    g.publish(snapshot(3, route("two", [a.upstream()], p2, auth=False)))
    assert g.gw.ports == [p2]
    try:
        httpx.get(url(p1, "/"), timeout=2)
        raise AssertionError("port of a removed service still accepts")
    except httpx.ConnectError:
        pass


def test_snapshot_source_errors_keep_the_last_snapshot(replicas: Any, gateway: Any) -> None:
    a = replicas("a")
    port = free_port()
    g = gateway(snapshot(1, route("svc", [a.upstream()], port)))

    def broken() -> Any:
        raise OSError("store is away")

    g.source.load = broken
    g.source.version = broken
    g.call(g.gw.refresh())
    assert g.gw.holder.errors >= 1
    assert httpx.get(url(port, "/"), auth=AUTH).status_code == 200


def test_host_addressing(replicas: Any, gateway: Any) -> None:
    a, b = replicas("a"), replicas("b")
    port = free_port()
    gateway(snapshot(1, route("flowers", [a.upstream()]), route("birds", [b.upstream()], auth=False)),
            addressing="host", host_port=port, base_domain="infer.test")
    with httpx.Client(auth=AUTH) as c:
        r = c.get(url(port, "/f"), headers={"Host": f"flowers.infer.test:{port}"})
        assert r.status_code == 200 and r.json()["replica"] == "a"
        assert c.get(url(port, "/b"), headers={"Host": "birds.infer.test"}).json()["replica"] == "b"
        assert c.get(url(port, "/"), headers={"Host": "nope.infer.test"}).status_code == 404
        assert c.get(url(port, "/")).status_code == 404


class ResettingReplica(RawReplica):
    """Reads each request's head and body, then resets its connection without a byte of answer for the first
    ``resets`` requests (a replica stopping with the request unread, or a kept-alive connection it closed as
    the request went out); answers the ones after. ``seen`` lists the request lines it read."""

    def __init__(self, resets: int) -> None:
        self.resets = resets
        self.seen: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while (got := self.read_head(conn, buf)) is not None:
                head, buf = got
                rest = self.skip_body(conn, buf, self.content_length(head))
                if rest is None:
                    return
                buf = rest
                self.seen.append(head.split(b"\r\n", 1)[0])
                if len(self.seen) <= self.resets:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def test_a_bodiless_idempotent_request_is_sent_again_when_the_replica_resets_before_answering(gateway: Any) -> None:
    rep = ResettingReplica(resets=1)
    port = free_port()
    gateway(snapshot(1, route("svc", [Upstream("r", "127.0.0.1", rep.port)], port)))
    try:
        with httpx.Client(auth=AUTH) as c:
            r = c.get(url(port, "/once"))
            assert (r.status_code, r.text) == (200, "ok")
            assert rep.seen == [b"GET /once HTTP/1.1"] * 2
            rep.resets = 5  # (a running count) it resets every attempt: 1 + connect_retries (2) tries, then 502
            r = c.get(url(port, "/always"))
            assert r.status_code == 502 and r.json()["code"] == "UpstreamError", r.text
            assert rep.seen[2:] == [b"GET /always HTTP/1.1"] * 3
            rep.resets = 6  # a POST may have been acted on: never sent twice
            r = c.post(url(port, "/post"), content=b"body")
            assert r.status_code == 502 and rep.seen[5:] == [b"POST /post HTTP/1.1"], (r.text, rep.seen)
            rep.resets = 7  # a DELETE with a body: not resent either (the body is not kept)
            r = c.request("DELETE", url(port, "/del"), content=b"x")
            assert r.status_code == 502 and rep.seen[6:] == [b"DELETE /del HTTP/1.1"], (r.text, rep.seen)
    finally:
        rep.close()


def _lost(g: Any) -> dict[str, int]:
    """``arkserve_gateway_request_log_lost_total`` by reason, from the admin listener."""
    metrics = httpx.get(f"http://127.0.0.1:{g.gw.admin_port}/metrics").text
    prefix = "arkserve_gateway_request_log_lost_total{reason=\""
    return {x[len(prefix):].split('"')[0]: int(x.rsplit(" ", 1)[1]) for x in metrics.splitlines()
            if x.startswith(prefix)}


def test_request_log_rows_the_sink_could_not_hand_on_are_counted_in_metrics(replicas: Any, gateway: Any) -> None:
    """Rows refused by a full backlog and rows of batches whose delivery failed show on /metrics, by reason;
    the requests themselves are answered as usual."""
    def refuse(batch: list[Any]) -> None:
        raise OSError("the writer is gone")

    a = replicas("a")
    failing, full = BatchingSink(refuse, interval_s=0.02), BatchingSink(lambda batch: None, max_backlog=0)
    ports = free_port(), free_port()
    for port, sink in zip(ports, (failing, full), strict=True):
        g = gateway(snapshot(1, route("svc", [a.upstream()], port)), sink=sink)
        with httpx.Client(auth=AUTH) as c:
            assert all(c.get(url(port, f"/{i}")).status_code == 200 for i in range(3))
        reason = "delivery" if sink is failing else "backlog"
        wait_for(f"3 rows lost to {reason}", lambda g=g, reason=reason: _lost(g).get(reason) == 3)
        assert set(_lost(g)) == {reason}
    failing.close()
    full.close()
