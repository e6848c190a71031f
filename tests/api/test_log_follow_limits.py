"""Log streams (``GET /services/NAME/logs?follow=true``) never take the API down: they read files on their own
worker threads and wait between polls without holding one, so more of them than the shared thread pool has threads
(40: every sync route and login use it), on a quiet replica or a replica id that does not exist, leave other users
answered; a user has at most ``api.log_follows_per_user`` open (429 beyond), and a closed client's slot comes back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from arkserve.logs import LogWriter, log_path
from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi, running_api

SPEC = {"name": "quiet", "image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 0}
PROMPT_S = 5.0  # what "answers promptly" allows here (a hung API answers never)


def _wait_until(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _user(api: LiveApi, name: str) -> httpx.Client:
    with httpx.Client(base_url=f"{api.url}/api/v1", auth=ArkAuth(api.admin_ak, api.admin_sk)) as admin:
        admin.post("/users", json={"username": name, "password": f"{name}-password"}).raise_for_status()
        key = admin.post("/keys", json={"username": name}).json()
    return httpx.Client(base_url=f"{api.url}/api/v1", auth=ArkAuth(key["access_key"], key["secret_key"]),
                        limits=httpx.Limits(max_connections=100, max_keepalive_connections=0),
                        timeout=httpx.Timeout(2 * PROMPT_S))


def _follow(client: httpx.Client, replica: str, stack: ExitStack) -> httpx.Response:
    """A follow stream whose head has arrived; it closes with ``stack`` (a refusal is read and closed at once)."""
    resp = client.send(client.build_request("GET", "/services/quiet/logs",
                                            params={"follow": "true", "tail": 0, "replica": replica}), stream=True)
    if resp.status_code != 200:
        resp.read()
        resp.close()
    else:
        stack.callback(resp.close)
    return resp


def _prompt(client: httpx.Client, path: str) -> httpx.Response:
    started = time.monotonic()
    resp = client.get(path, timeout=PROMPT_S)
    assert resp.status_code == 200 and time.monotonic() - started < PROMPT_S
    return resp


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LiveApi]:
    with running_api(tmp_path, **{"api.log_follows_per_user": 50}) as live:
        yield live


def test_more_follows_than_the_shared_pool_leave_the_api_answering(api: LiveApi) -> None:
    quiet = LogWriter(log_path(api.data_dir / "logs", "quiet", "r0000a1"), "r0000a1")
    alice, bob = _user(api, "alice"), _user(api, "bob")
    alice.post("/services", json=SPEC).raise_for_status()
    quiet.write("before")
    with ExitStack() as stack:  # 45 > the 40 shared threads: a quiet replica, and a replica id that never existed
        streams = [_follow(alice, "r0000a1" if i % 2 else "rnothere", stack) for i in range(45)]
        assert {s.status_code for s in streams} == {200}
        for _ in range(3):
            assert _prompt(bob, "/whoami").json()["username"] == "bob"
        assert _prompt(alice, "/services/quiet").json()["name"] == "quiet"
        quiet.write("live line")  # the streams still work: a line written now reaches a follower of its replica
        chunks = streams[1].iter_text()
        assert "live line" in next(chunks)
    for _ in range(3):  # and once the clients are gone, nothing is left behind holding threads
        _prompt(bob, "/whoami")
    with ExitStack() as stack:  # the 45 slots came back (each stream ended): as many follows again
        for _ in range(45):
            _wait_until(lambda: _follow(alice, "rnothere", stack).status_code == 200, what="a slot given back")
        _prompt(bob, "/whoami")
    quiet.close()
    alice.close()
    bob.close()


def test_a_user_has_at_most_log_follows_per_user_streams_open(tmp_path: Path) -> None:
    with running_api(tmp_path) as api:  # the default: 8
        carol, dave = _user(api, "carol"), _user(api, "dave")
        carol.post("/services", json=SPEC).raise_for_status()
        dave.post("/services", json={**SPEC, "name": "other"}).raise_for_status()
        with ExitStack() as stack:
            assert {_follow(carol, "rnothere", stack).status_code for _ in range(8)} == {200}
            refused = _follow(carol, "rnothere", stack)
            assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
            body = refused.json()
            assert body["code"] == "TooManyRequests" and "8 log streams" in body["message"] and body["request_id"]
            assert carol.get("/services/quiet/logs").status_code == 200  # reading without follow is not capped
            other = dave.send(dave.build_request("GET", "/services/other/logs", params={"follow": "true"}),
                              stream=True)  # another user has slots of their own
            stack.callback(other.close)
            assert other.status_code == 200
        with ExitStack() as stack:  # carol's clients went away: their slots come back within about a poll
            _wait_until(lambda: _follow(carol, "rnothere", stack).status_code == 200, what="carol's slot back")
        carol.close()
        dave.close()
