"""Login throttling through the live API: 429 + Retry-After after a few failures, no lockout of the admin at
their usual address, a bound on concurrent password hashes, and failures as security events for admins.

Clients at different addresses are loopback sockets bound to 127.0.0.2 / 127.0.0.3 (the server stays on
127.0.0.1)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi


@contextmanager
def _web(live_api: LiveApi, source: str = "127.0.0.1") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{live_api.url}/api/v1", transport=httpx.HTTPTransport(local_address=source)) as c:
        yield c


def _login(web: httpx.Client, username: str, password: str) -> httpx.Response:
    return web.post("/session", json={"username": username, "password": password})


def test_wrong_passwords_get_429_with_retry_after(live_api: LiveApi) -> None:
    with _web(live_api) as web:
        codes = [(r.status_code, r.headers.get("retry-after"), r.json()["code"])
                 for r in (_login(web, "admin", "wrong-password") for _ in range(30))]
    assert codes[:6] == [(401, None, "LoginFailed")] * 6
    throttled = [c for c in codes if c[0] == 429]
    assert len(throttled) >= 20, codes  # every attempt during the delay is refused without a hash
    assert all(ra is not None and int(ra) >= 1 and code == "LoginThrottled" for _, ra, code in throttled), codes


def test_an_attacker_elsewhere_does_not_lock_the_admin_out(live_api: LiveApi) -> None:
    with _web(live_api) as admin:
        assert _login(admin, "admin", live_api.admin_password).status_code == 200  # the admin's usual address
    with _web(live_api, "127.0.0.2") as attacker:
        failures = 0
        while failures < 8:  # the 8th failure makes the account wait 4 s
            resp = _login(attacker, "admin", f"guess-{failures}")
            if resp.status_code == 429:
                time.sleep(int(resp.headers["retry-after"]))  # what the server asked for
                continue
            assert resp.status_code == 401
            failures += 1
    with _web(live_api, "127.0.0.3") as stranger:  # a new address for this account waits (bounded)...
        resp = _login(stranger, "admin", live_api.admin_password)
        assert resp.status_code == 429 and 1 <= int(resp.headers["retry-after"]) <= 60
    with _web(live_api) as admin:  # ...while the admin at their usual address gets in at once
        assert _login(admin, "admin", live_api.admin_password).status_code == 200


def test_concurrent_password_hashes_are_bounded(live_api: LiveApi) -> None:
    n = 16
    start = threading.Barrier(n)
    results: list[tuple[int, str]] = []

    def one() -> None:
        with _web(live_api) as web:
            start.wait()
            r = _login(web, "admin", live_api.admin_password)
            results.append((r.status_code, r.json().get("code", "") if r.status_code != 200 else ""))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n
    busy = [r for r in results if r == (429, "LoginBusy")]
    ok = [r for r in results if r[0] == 200]
    assert busy and ok and len(busy) + len(ok) == n, results
    assert len(ok) <= n - len(busy)


def test_failures_are_security_events_for_admins(live_api: LiveApi) -> None:
    with _web(live_api, "127.0.0.2") as web:
        assert _login(web, "admin", "not-the-password").status_code == 401
        assert _login(web, "nobody", "not-the-password").status_code == 401
    with live_api.client() as c:
        events = c.get("/security/events")
        c.post("/users", {"username": "alice", "password": "alice-password"})
        key = c.post("/keys", {"username": "alice"})
    assert [(e["kind"], e["username"], e["client"]) for e in events][:2] == [
        ("login_failed", "nobody", "127.0.0.2"), ("login_failed", "admin", "127.0.0.2")]
    assert "console login" in events[0]["message"]
    auth = ArkAuth(key["access_key"], key["secret_key"])
    resp = httpx.get(f"{live_api.url}/api/v1/security/events", auth=auth)
    assert resp.status_code == 403  # not for plain users
    resp = httpx.post(f"{live_api.url}/api/v1/keys/{key['access_key']}/reveal", json={"password": "wrong-one"},
                      auth=auth)
    assert resp.status_code == 401
    with live_api.client() as c:
        latest = c.get("/security/events", username="alice")[0]
    assert latest["kind"] == "login_failed" and "key reveal" in latest["message"]


@pytest.mark.parametrize("path", ["/me/password"])
def test_password_change_is_throttled_too(live_api: LiveApi, path: str) -> None:
    auth = ArkAuth(live_api.admin_ak, live_api.admin_sk)
    codes = [httpx.post(f"{live_api.url}/api/v1{path}", auth=auth,
                        json={"current_password": "wrong-pass", "new_password": "new-password-1"}).status_code
             for _ in range(10)]
    assert codes[:6] == [401] * 6 and 429 in codes[6:], codes


def test_admins_list_security_events_from_the_cli(live_api: LiveApi) -> None:
    from click.testing import CliRunner

    from arkserve.cli.main import cli

    with _web(live_api, "127.0.0.2") as web:
        assert _login(web, "admin", "not-the-password").status_code == 401
    env = {"ARKSERVE_ACCESS_KEY": live_api.admin_ak, "ARKSERVE_SECRET_KEY": live_api.admin_sk,
           "ARKSERVE_ENDPOINT": live_api.url}
    out = CliRunner().invoke(cli, ["user", "security-events", "--user", "admin", "-o", "json"], env=env,
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert '"client": "127.0.0.2"' in out.output and '"kind": "login_failed"' in out.output
