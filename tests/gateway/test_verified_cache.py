"""The gateway's cache of verified signatures never changes a verdict: a replayed request (the same
signed headers, as a client sends within one second) is accepted while it would verify, and refused
as soon as its key, the route or the clock says otherwise."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import httpx

from arkserve.auth.signing import sign_headers
from arkserve.domain.routing import RoutingSnapshot
from tests.gateway.harness import SK, keys, route, snapshot
from tests.live import free_port


def _signed(port: int, path: str = "/again", now: float | None = None) -> dict[str, str]:
    return sign_headers(method="GET", url=path, host=f"127.0.0.1:{port}", access_key="AKOWNER", secret_key=SK,
                        body=b"", now=time.time() if now is None else now)


def _code(resp: httpx.Response) -> str:
    return "ok" if resp.status_code == 200 else f"{resp.status_code} {resp.json()['code']}"


def test_a_replay_is_refused_once_its_key_is_disabled(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    svc = route("svc", [r1.upstream()], port)
    g = gateway(snapshot(1, svc))
    h = _signed(port)
    with httpx.Client() as c:
        assert [_code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) for _ in range(3)] == ["ok"] * 3
        without = {ak: k for ak, k in keys().items() if ak != "AKOWNER"}  # disabled or deleted
        g.publish(RoutingSnapshot(version=2, services={"svc": svc}, keys=without))
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "401 InvalidCredential"
        g.publish(snapshot(3, svc))  # enabled again
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "ok"
        g.publish(snapshot(4, replace(svc, owner_id=2)))  # the service changed hands: not this key's any more
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "403 AccessDenied"
    assert len(r1.hits) == 4


def test_a_replay_is_refused_once_its_date_leaves_the_window(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    gateway(snapshot(1, route("svc", [r1.upstream()], port)), skew_s=2)
    now = math.floor(time.time())
    h = _signed(port, now=now)
    with httpx.Client() as c:
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "ok"
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "ok"
        time.sleep(max(0.0, now + 2.6 - time.time()))
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "401 RequestExpired"
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=_signed(port))) == "ok"  # a fresh one


def test_a_tampered_replay_is_checked_in_full(replicas: Any, gateway: Any) -> None:
    r1 = replicas("r1")
    port = free_port()
    gateway(snapshot(1, route("svc", [r1.upstream()], port)))
    h = _signed(port)
    other = _signed(port, "/other")  # a well-formed signature, of another request
    with httpx.Client() as c:
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "ok"
        bad = {**h, "Authorization": other["Authorization"]}
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=bad)) == "401 SignatureMismatch"
        assert _code(c.get(f"http://127.0.0.1:{port}/other", headers=h)) == "401 SignatureMismatch"  # other path
        assert _code(c.get(f"http://127.0.0.1:{port}/again", headers=h)) == "ok"
    assert r1.hits == ["/again", "/again"]


def test_a_replay_sent_to_another_services_port_is_checked_for_that_service(replicas: Any, gateway: Any) -> None:
    mine, theirs = replicas("mine"), replicas("theirs")
    a, b = free_port(), free_port()
    gateway(snapshot(1, route("a", [mine.upstream()], a), replace(route("b", [theirs.upstream()], b), owner_id=2)))
    h = _signed(a)  # Host names a's port
    with httpx.Client() as c:
        assert _code(c.get(f"http://127.0.0.1:{a}/again", headers=h)) == "ok"
        # the same bytes on b's port: refused before the signature (and the cache) is even looked at, because
        # the Host names a's port (docs/gateway.md); the service in the cache key stays as a second line
        assert _code(c.get(f"http://127.0.0.1:{b}/again", headers={**h, "Host": f"127.0.0.1:{a}"})) == \
            "401 HostMismatch"
    assert theirs.hits == []
