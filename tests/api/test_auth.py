"""Who may call /api/v1: signatures (good, bad, expired, foreign), sessions with CSRF, error bodies."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from tests.api.conftest import LiveApi, running_api


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code and body["message"] and body["request_id"]
    assert resp.headers["x-request-id"] == body["request_id"]
    assert resp.headers["x-content-type-options"] == "nosniff"  # every /api/ answer
    return body


def test_unsigned_request_is_401_json_with_challenge(live_api: LiveApi) -> None:
    resp = httpx.get(f"{live_api.url}/api/v1/whoami")
    _error(resp, 401, "MissingAuthorization")
    assert resp.headers["www-authenticate"] == "HMAC-SHA256"
    assert "date" in resp.headers


@pytest.mark.parametrize(("mutate", "code"), [
    (lambda ak, sk: (ak, "A" * 43 + "="), "SignatureMismatch"),
    (lambda ak, sk: ("AKDOESNOTEXIST000000", sk), "InvalidCredential"),
])
def test_badly_signed_requests_are_401(live_api: LiveApi, mutate, code: str) -> None:
    ak, sk = mutate(live_api.admin_ak, live_api.admin_sk)
    resp = httpx.get(f"{live_api.url}/api/v1/whoami", auth=ArkAuth(ak, sk))
    _error(resp, 401, code)


def test_expired_and_future_dates_are_401(live_api: LiveApi) -> None:
    for skew in (-16 * 60, 16 * 60):
        auth = ArkAuth(live_api.admin_ak, live_api.admin_sk, clock=lambda s=skew: time.time() + s)
        body = _error(httpx.get(f"{live_api.url}/api/v1/whoami", auth=auth), 401, "RequestExpired")
        assert "15" in body["message"] or "900" in body["message"]
    auth = ArkAuth(live_api.admin_ak, live_api.admin_sk, clock=lambda: time.time() - 14 * 60)
    assert httpx.get(f"{live_api.url}/api/v1/whoami", auth=auth).status_code == 200


def test_tampered_signed_body_is_rejected(live_api: LiveApi) -> None:
    req = httpx.Request("POST", f"{live_api.url}/api/v1/keys", json={"description": "x"})
    signed = next(ArkAuth(live_api.admin_ak, live_api.admin_sk).auth_flow(req))
    signed.stream = httpx.ByteStream(signed.content.replace(b'"x"', b'"y"'))
    with httpx.Client() as c:
        _error(c.send(signed), 401, "ContentHashMismatch")


def test_whoami_with_the_bootstrapped_key(live_api: LiveApi) -> None:
    with live_api.client() as c:
        me = c.get("/whoami")
    assert me["username"] == "admin" and me["role"] == "admin" and me["access_key"] == live_api.admin_ak


def test_disabled_key_and_disabled_user_stop_working(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "bob", "password": "bob-password"})
        bob_key = admin.post("/keys", {"username": "bob", "description": "for bob"})
        admin.patch(f"/keys/{bob_key['access_key']}", {"enabled": False})
        with live_api.client(bob_key["access_key"], bob_key["secret_key"]) as bob, pytest.raises(ApiError) as e:
            bob.get("/whoami")
        assert (e.value.status, e.value.code) == (401, "InvalidCredential")
        admin.patch(f"/keys/{bob_key['access_key']}", {"enabled": True})
        with live_api.client(bob_key["access_key"], bob_key["secret_key"]) as bob:
            assert bob.get("/whoami")["username"] == "bob"
        admin.patch("/users/bob", {"disabled": True})
        with live_api.client(bob_key["access_key"], bob_key["secret_key"]) as bob, pytest.raises(ApiError) as e:
            bob.get("/whoami")
        assert e.value.code == "InvalidCredential"


def test_plain_user_cannot_see_or_touch_other_users_keys(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "carol", "password": "carol-password"})
        carol_key = admin.post("/keys", {"username": "carol"})
    with live_api.client(carol_key["access_key"], carol_key["secret_key"]) as carol:
        assert [k["access_key"] for k in carol.get("/keys")] == [carol_key["access_key"]]
        for call in (lambda: carol.get(f"/keys/{live_api.admin_ak}"),
                     lambda: carol.delete(f"/keys/{live_api.admin_ak}"),
                     lambda: carol.patch(f"/keys/{live_api.admin_ak}", {"enabled": False}),
                     lambda: carol.post(f"/keys/{live_api.admin_ak}/reveal", {"password": "carol-password"})):
            with pytest.raises(ApiError) as e:
                call()
            assert (e.value.status, e.value.code) == (404, "KeyNotFound")
        for call in (lambda: carol.get("/users"), lambda: carol.get("/keys", all="true"),
                     lambda: carol.post("/users", {"username": "mallory", "password": "mallory-pw"}),
                     lambda: carol.post("/keys", {"username": "admin"})):
            with pytest.raises(ApiError) as e:
                call()
            assert (e.value.status, e.value.code) == (403, "AccessDenied")
    with live_api.client() as admin:  # and the admin key still works
        assert admin.get(f"/keys/{live_api.admin_ak}")["enabled"] is True


def test_unknown_route_wrong_method_and_bad_field_are_json(live_api: LiveApi) -> None:
    auth = ArkAuth(live_api.admin_ak, live_api.admin_sk)
    _error(httpx.get(f"{live_api.url}/api/v1/nope", auth=auth), 404, "NotFound")
    _error(httpx.put(f"{live_api.url}/api/v1/whoami", auth=auth), 405, "MethodNotAllowed")
    body = _error(httpx.post(f"{live_api.url}/api/v1/users", auth=auth,
                             json={"username": "Bad Name", "password": "long-enough"}), 422, "ValidationFailed")
    assert body["field"] == "username" and "username" in body["message"]
    body = _error(httpx.post(f"{live_api.url}/api/v1/users", auth=auth, content=b"{not json",
                             headers={"content-type": "application/json"}), 422, "ValidationFailed")


def test_console_session_needs_csrf_and_logs_out(live_api: LiveApi) -> None:
    with httpx.Client(base_url=f"{live_api.url}/api/v1") as web:
        _error(web.post("/session", json={"username": "admin", "password": "wrong-password"}), 401, "LoginFailed")
        _error(web.post("/session", json={"username": "ghost", "password": "wrong-password"}), 401, "LoginFailed")
        resp = web.post("/session", json={"username": "admin", "password": live_api.admin_password})
        assert resp.status_code == 200
        cookie = resp.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        csrf = resp.json()["csrf_token"]
        assert web.get("/whoami").json()["auth"] == "session"
        _error(web.post("/keys", json={}), 403, "CSRFFailed")
        _error(web.post("/keys", json={}, headers={"x-csrf-token": "forged"}), 403, "CSRFFailed")
        created = web.post("/keys", json={"description": "console"}, headers={"x-csrf-token": csrf})
        assert created.status_code == 201
        assert web.delete("/session", headers={"x-csrf-token": csrf}).status_code == 204
        _error(web.get("/whoami"), 401, "MissingAuthorization")


def test_session_cookie_alone_is_useless_after_logout(live_api: LiveApi) -> None:
    web = httpx.Client(base_url=f"{live_api.url}/api/v1")
    web.post("/session", json={"username": "admin", "password": live_api.admin_password})
    token = web.cookies["ark_session"]
    csrf = web.get("/session").json()["csrf_token"]
    web.delete("/session", headers={"x-csrf-token": csrf})
    web.close()
    resp = httpx.get(f"{live_api.url}/api/v1/whoami", cookies={"ark_session": token})
    _error(resp, 401, "SessionExpired")


def test_no_secret_reaches_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with running_api(tmp_path, **{"store.busy_timeout_ms": 300}) as api:  # SQLite: a busy store fails fast
        with api.client() as admin:  # calls that succeed
            admin.post("/users", {"username": "dora", "password": "dora-secret-pw"})
            key = admin.post("/keys", {"username": "dora"})
            admin.post(f"/keys/{api.admin_ak}/reveal", {"password": api.admin_password})
        login = httpx.post(f"{api.url}/api/v1/session", json={"username": "admin", "password": api.admin_password})
        assert login.status_code == 200, login.text
        session = login.cookies["ark_session"]
        wrong = httpx.post(f"{api.url}/api/v1/session", json={"username": "dora", "password": "wrong-secret-pw"})
        _error(wrong, 401, "LoginFailed")
        # calls that fail on the server's side: another writer holds the store, arkserve logs each 503
        locker = sqlite3.connect(api.database_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            auth = ArkAuth(api.admin_ak, api.admin_sk)
            busy = [httpx.post(f"{api.url}/api/v1/users", auth=auth,
                               json={"username": "erin", "password": "erin-secret-pw"}),
                    httpx.post(f"{api.url}/api/v1/session", json={"username": "admin", "password": api.admin_password})]
        finally:
            locker.rollback()
            locker.close()
        for resp in busy:
            _error(resp, 503, "StoreUnavailable")
    ours = [r for r in caplog.records if r.name.startswith("arkserve")]
    assert sum("StoreUnavailable" in r.getMessage() for r in ours) == 2, [r.getMessage() for r in ours]
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]  # not this test's client
    text = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in server_side)  # with tracebacks
    for secret in (api.admin_sk, api.admin_password, key["secret_key"], "dora-secret-pw", "wrong-secret-pw",
                   "erin-secret-pw", session):
        assert secret not in text
