"""HEAD is answered wherever GET is (RFC 9110 §9.3.2), with the GET's status and headers and no body: the health
probes, signed API reads (the signature over HEAD verified as HEAD), a network disk download with its Range
headers, the console's pages and static files; a HEAD of a log stream (``follow=true``) ends after its head and
gives its slot back; POST-only routes stay 405, WebDAV's own HEAD under /dav/ is left to wsgidav, and the OpenAPI
document lists no HEAD operation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi, running_api

SPEC = {"name": "quiet", "image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 0}
PROMPT_S = 5.0
SAME = ("content-type", "content-length", "x-total-count", "etag", "accept-ranges", "content-range",
        "content-security-policy", "cache-control")


def _wait_until(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with running_api(tmp_path_factory.mktemp("head"), **{"api.log_follows_per_user": 1}) as live:
        yield live


@pytest.fixture(scope="module")
def admin(api: LiveApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, auth=ArkAuth(api.admin_ak, api.admin_sk), timeout=PROMPT_S) as c:
        c.post("/api/v1/services", json=SPEC).raise_for_status()
        c.put("/api/v1/disk/files/data/blob.bin", content=bytes(range(256)) * 64).raise_for_status()
        yield c


def _like_get(client: httpx.Client, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    got, head = client.get(path, headers=headers), client.head(path, headers=headers)
    assert head.status_code == got.status_code, (path, head.status_code, head.text)
    assert head.content == b""
    for name in SAME:
        assert head.headers.get(name) == got.headers.get(name), (path, name)
    assert head.headers.get("x-request-id")
    return head


def test_head_answers_like_get_on_probes_and_signed_reads(api: LiveApi, admin: httpx.Client) -> None:
    with httpx.Client(base_url=api.url, timeout=PROMPT_S) as anonymous:
        for path in ("/api/v1/healthz", "/api/v1/readyz", "/api/v1/openapi.json"):
            assert _like_get(anonymous, path).status_code == 200
        assert _like_get(anonymous, "/api/v1/whoami").status_code == 401  # the GET's answer: not signed
    for path in ("/api/v1/whoami", "/api/v1/services", "/api/v1/services/quiet", "/api/v1/services/quiet/events",
                 "/api/v1/services/quiet/logs", "/api/v1/services/nope", "/api/v1/disk/stat/data/blob.bin"):
        _like_get(admin, path)
    assert admin.head("/api/v1/services").headers["x-total-count"] == "1"
    assert admin.head("/api/v1/services/nope").status_code == 404
    doc = httpx.get(f"{api.url}/api/v1/openapi.json").json()
    assert not [p for p, item in doc["paths"].items() if "head" in item]


def test_head_of_a_download_gives_its_length_and_range(admin: httpx.Client) -> None:
    whole = _like_get(admin, "/api/v1/disk/files/data/blob.bin")
    assert (whole.status_code, whole.headers["content-length"]) == (200, str(256 * 64))
    part = _like_get(admin, "/api/v1/disk/files/data/blob.bin", {"Range": "bytes=10-19"})
    assert (part.status_code, part.headers["content-length"]) == (206, "10")
    assert part.headers["content-range"] == f"bytes 10-19/{256 * 64}"
    assert _like_get(admin, "/api/v1/disk/files/data/blob.bin", {"Range": "bytes=99999-"}).status_code == 416


def test_head_of_a_log_stream_ends_after_its_head_and_frees_its_slot(api: LiveApi, admin: httpx.Client) -> None:
    for _ in range(4):  # one stream allowed per user: each HEAD must have given its slot back for the next
        def answered() -> bool:
            started = time.monotonic()
            resp = admin.head("/api/v1/services/quiet/logs", params={"follow": "true"})
            assert time.monotonic() - started < PROMPT_S
            assert resp.status_code in (200, 429) and resp.content == b""
            return resp.status_code == 200
        _wait_until(answered, "a HEAD of a log stream answered 200")
    ask = admin.build_request("GET", "/api/v1/services/quiet/logs", params={"follow": "true"})
    streams: list[httpx.Response] = []
    try:
        def followed() -> bool:
            resp = admin.send(ask, stream=True)
            if resp.status_code == 200:
                streams.append(resp)
                return True
            resp.read()
            resp.close()
            return False
        _wait_until(followed, "the slot free for a real stream")
    finally:
        for s in streams:
            s.close()


def test_console_pages_and_static_files_answer_head(api: LiveApi) -> None:
    with httpx.Client(base_url=api.url, timeout=PROMPT_S) as browser:
        shell = _like_get(browser, "/")
        assert shell.status_code == 200 and "frame-ancestors" in shell.headers["content-security-policy"]
        assert _like_get(browser, "/console/services").status_code == 200
        assert _like_get(browser, "/static/app.js").status_code == 200
        assert _like_get(browser, "/api/v1/docs").status_code == 200


def test_head_stays_405_where_get_is_not_answered_and_dav_is_left_alone(api: LiveApi, admin: httpx.Client) -> None:
    topup = admin.head("/api/v1/billing/topup")
    assert topup.status_code == 405 and "GET" not in topup.headers["allow"]
    assert admin.head("/api/v1/no/such/route").status_code == 404
    with httpx.Client(base_url=api.url, timeout=PROMPT_S) as anonymous:
        dav = anonymous.head("/dav/")
    assert dav.status_code == 401 and dav.headers["www-authenticate"].lower().startswith("basic")  # wsgidav's
    assert (healthz := admin.head("/api/v1/healthz")).status_code == 200 and healthz.content == b""
