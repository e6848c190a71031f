"""Service endpoints through the real gateway: the reference client's signing style, 401/403, public services,
key changes taking effect within 2 s, and the request log showing which replica served what."""

from __future__ import annotations

import ssl
import sys
import time

import httpx
import requests

from arkserve.auth.signing import sign_headers
from arkserve.sdk.auth import ArkRequestsAuth
from tests.e2e.conftest import Platform


def _reference_style_post(url: str, host: str, ak: str, sk: str, ca: str) -> requests.Response:
    """What the published client does: sign the empty payload, then send a multipart file."""
    headers = sign_headers(method="POST", url="/flowers", host=host, access_key=ak, secret_key=sk, body=b"",
                           now=time.time())
    return requests.post(url + "/flowers", headers=headers, files={"content": ("a.jpg", b"\xff\xd8jpeg-bytes")},
                         verify=ca, timeout=30)


def test_signed_calls_reach_the_app_and_the_request_log(platform: Platform) -> None:
    svc = platform.create("flowers")
    endpoint = svc["endpoint"]
    assert endpoint.startswith("https://127.0.0.1:")
    p = platform.profile
    host = endpoint.removeprefix("https://")
    resp = _reference_style_post(endpoint, host, p.access_key, p.secret_key, platform.ca)
    assert resp.status_code == 200, resp.text
    assert resp.json()["path"] == "/flowers" and resp.headers["x-request-id"]
    rid = resp.headers["x-request-id"]
    via_sdk = requests.get(endpoint + "/v1/x?a=1&a=2", auth=ArkRequestsAuth(p.access_key, p.secret_key),
                           verify=platform.ca, timeout=30)
    assert via_sdk.json()["path"] == "/v1/x?a=1&a=2"  # path and query reach the replica unchanged
    wrong = _reference_style_post(endpoint, host, p.access_key, "A" * 43 + "=", platform.ca)
    assert wrong.status_code == 401 and wrong.json()["code"] == "SignatureMismatch"
    assert wrong.headers["www-authenticate"] == "HMAC-SHA256"
    unsigned = requests.get(endpoint + "/", verify=platform.ca, timeout=30)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "MissingAuthorization"
    deadline = time.monotonic() + 10
    with platform.client() as c:  # the request log is written in batches: until ours is in
        while not (mine := [r for r in c.get("/services/flowers/requests") if r["request_id"] == rid]):
            assert time.monotonic() < deadline, f"request {rid} not in the request log after 10 s"
            time.sleep(0.1)
    assert len(mine) == 1 and mine[0]["replica"] == svc["instances"][0]["id"] and mine[0]["status"] == 200
    assert mine[0]["access_key"] == p.access_key and mine[0]["path"] == "/flowers"
    cli = platform.cli("invoke", "flowers", "/hello", "-v")
    assert cli.returncode == 0 and '"path": "/hello"' in cli.stdout and "string to sign" in cli.stderr
    assert p.secret_key not in cli.stderr + cli.stdout
    replica = svc["instances"][0]["id"]
    logs = platform.cli("service", "logs", "flowers", "--replica", replica, "--since", "10m")
    assert logs.returncode == 0 and f" {replica} POST /flowers" in logs.stdout and "GET /hello" in logs.stdout
    tail = platform.cli("service", "logs", "flowers", "--tail", "1")
    assert tail.stdout.count("\n") == 1 and f" {replica} " in tail.stdout  # health checks log lines too
    missing = platform.cli("service", "logs", "nope")
    assert missing.returncode == 1 and "ServiceNotFound" in missing.stderr


def test_foreign_keys_get_403_and_key_changes_apply_within_2s(platform: Platform) -> None:
    svc = platform.create("private")
    with platform.client() as admin:
        admin.post("/users", {"username": "other", "password": "other-password"})
        other = admin.post("/keys", {"username": "other"})
        mine = admin.post("/keys", {"description": "to be disabled"})
    url = svc["endpoint"] + "/"
    # new keys reach every gateway worker with its next snapshot
    _answered_everywhere_within_2s(url, ArkRequestsAuth(other["access_key"], other["secret_key"]), platform.ca,
                                   403, "AccessDenied")
    auth = ArkRequestsAuth(mine["access_key"], mine["secret_key"])
    _answered_everywhere_within_2s(url, auth, platform.ca, 200, None)
    with platform.client() as admin:
        admin.patch(f"/keys/{mine['access_key']}", {"enabled": False})
    _answered_everywhere_within_2s(url, auth, platform.ca, 401, "InvalidCredential")


def _answered_everywhere_within_2s(url: str, auth: object, ca: str, status: int, code: str | None) -> None:
    """Every gateway worker must apply a change within 2 s: wait for 20 such answers in a row (requests on new
    connections land on either worker), all within the 2 s."""
    t0, streak = time.monotonic(), 0
    while streak < 20:
        assert time.monotonic() - t0 < 2.0, "the change took longer than 2 s to reach every gateway worker"
        resp = requests.get(url, auth=auth, verify=ca, timeout=30)  # type: ignore[arg-type]
        ok = resp.status_code == status and (code is None or resp.json()["code"] == code)
        streak = streak + 1 if ok else 0


def test_a_public_service_needs_no_signature(platform: Platform) -> None:
    svc = platform.create("public", auth=False)
    ctx = ssl.create_default_context(cafile=platform.ca)
    resp = httpx.get(svc["endpoint"] + "/open", verify=ctx)
    assert resp.status_code == 200 and resp.json()["path"] == "/open"
    with platform.client() as c:
        c.patch("/services/public", {"auth": True})
    _answered_everywhere_within_2s(svc["endpoint"] + "/open", None, platform.ca, 401, "MissingAuthorization")


def test_a_crash_looping_public_service_answers_at_once_without_its_logs(platform: Platform) -> None:
    with platform.client() as c:
        c.post("/services", {"name": "broken", "image": str(platform.app_dir), "port": 8000, "auth": False,
                             "command": f"{sys.executable} app.py", "env": {"CRASH_AT_START": "3"}})
        deadline = time.monotonic() + 60
        while (svc := c.get("/services/broken"))["status"] != "failed":
            assert time.monotonic() < deadline, svc
            time.sleep(0.3)
    assert svc["reason"] == "CrashLoop" and "bad config" in svc["message"]  # the owner sees the app's output
    ctx = ssl.create_default_context(cafile=platform.ca)
    deadline = time.monotonic() + 5  # the gateway's snapshot follows within a poll or two
    while True:
        t0 = time.monotonic()
        resp = httpx.get(svc["endpoint"] + "/x", verify=ctx, timeout=60)
        if resp.json().get("code") == "ServiceFailing" or time.monotonic() > deadline:
            break
    assert time.monotonic() - t0 < 2  # not the 30 s queue timeout
    assert resp.status_code == 503 and resp.headers["retry-after"]
    err = resp.json()
    assert err["code"] == "ServiceFailing" and "(CrashLoop)" in err["message"]
    assert "bad config" not in resp.text  # a public caller never sees the app's log lines
