"""PATCH of a service validates like create: 422 naming the field, ``null`` only where it unsets; never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi

SPEC = {"name": "pub", "image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 1}


def _patch(live_api: LiveApi, body: Any) -> httpx.Response:
    return httpx.patch(f"{live_api.url}/api/v1/services/pub", json=body,
                       auth=ArkAuth(live_api.admin_ak, live_api.admin_sk))


@pytest.fixture
def pub(live_api: LiveApi) -> LiveApi:
    with live_api.client() as c:
        c.post("/services", SPEC)
    return live_api


@pytest.mark.parametrize(("body", "field"), [
    ({"env": {"PORT": "1"}}, "env"),
    ({"env": {"A=B": "x"}}, "env"),
    ({"env": {f"V{i}": "x" for i in range(1001)}}, "env"),
    ({"env": {"BIG": "x" * (128 * 1024)}}, "env"),
    ({"health_path": "nope"}, "health_path"),
    ({"image": None}, "image"),
    ({"port": None}, "port"),
    ({"command": None}, "command"),
    ({"env": None}, "env"),
    ({"auth": None}, "auth"),
    ({"max_surge": None}, "max_surge"),
    ({"replicas": None}, "replicas"),
    ({"model": {"source": "disk", "mount_path": "relative"}}, "model.mount_path"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_patches_are_422_naming_the_field(pub: LiveApi, body: dict[str, Any], field: str) -> None:
    resp = _patch(pub, body)
    assert resp.status_code == 422, resp.text
    out = resp.json()
    assert (out["code"], out["field"]) == ("ValidationFailed", field) and out["request_id"]
    assert out["message"].startswith(f"{field}: ")


def test_null_health_path_unsets_it_and_the_connection_stays_open(pub: LiveApi) -> None:
    with httpx.Client(auth=ArkAuth(pub.admin_ak, pub.admin_sk)) as web:
        url = f"{pub.url}/api/v1/services/pub"
        assert web.patch(url, json={"health_path": "/ready"}).json()["spec"]["health_path"] == "/ready"
        assert web.patch(url, json={"env": {"PORT": "1"}}).status_code == 422
        # the same keep-alive connection carries on after a refused PATCH
        out = web.patch(url, json={"health_path": None})
        assert out.status_code == 200 and out.json()["spec"]["health_path"] is None
        assert web.get(url).json()["spec"]["health_path"] is None


def test_create_refuses_the_same_env_as_patch(live_api: LiveApi) -> None:
    auth = ArkAuth(live_api.admin_ak, live_api.admin_sk)
    for env in ({"BIG": "x" * (128 * 1024)}, {f"V{i}": "x" for i in range(1001)}):
        resp = httpx.post(f"{live_api.url}/api/v1/services", json={**SPEC, "env": env}, auth=auth)
        assert resp.status_code == 422 and resp.json()["field"] == "env", resp.text


def test_invalid_json_names_the_character(live_api: LiveApi) -> None:
    resp = httpx.post(f"{live_api.url}/api/v1/services", content=b'{"name": "x", !}',
                      headers={"content-type": "application/json"},
                      auth=ArkAuth(live_api.admin_ak, live_api.admin_sk))
    assert resp.status_code == 422
    out = resp.json()
    assert (out["message"], out["field"]) == ("invalid JSON at character 14", "body")


_FIELDS = ["replicas", "image", "port", "command", "instance_type", "env", "health_path", "auth", "model",
           "max_surge", "request_timeout_s", "max_concurrency", "startup_timeout_s", "name", "x"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
_VALUES = _JSON | st.dictionaries(st.sampled_from(["source", "ref", "mount_path", "PORT", "A", "1x"]),
                                  _JSON | st.text(max_size=20), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=4) | _JSON)
def test_random_patch_bodies_never_get_a_5xx(pub: LiveApi, body: Any) -> None:
    resp = _patch(pub, body)
    assert resp.status_code < 500, (body, resp.text)
    if resp.status_code != 200:
        assert resp.status_code == 422 and resp.json()["code"] == "ValidationFailed", resp.text


def test_a_local_image_directory_must_exist(live_api: LiveApi) -> None:
    auth = ArkAuth(live_api.admin_ak, live_api.admin_sk)
    resp = httpx.post(f"{live_api.url}/api/v1/services", json={**SPEC, "image": "/no/such/app"}, auth=auth)
    assert resp.status_code == 422 and resp.json()["field"] == "image", resp.text
    assert "no directory /no/such/app" in resp.json()["message"]
    assert httpx.post(f"{live_api.url}/api/v1/services", json=SPEC, auth=auth).status_code == 201
    resp = httpx.patch(f"{live_api.url}/api/v1/services/pub", json={"image": "/no/such/app"}, auth=auth)
    assert resp.status_code == 422 and resp.json()["field"] == "image", resp.text


def test_two_patches_at_once_both_take_effect(pub: LiveApi) -> None:
    """Two clients changing different fields of one service at once: each PATCH reads the service in the
    transaction that writes it, so neither answer 200 hides a change the other wrote over (before, 19 of 20
    such pairs lost one change; hostile review, 2026-12-03)."""
    import threading

    lost = []
    for i in range(1, 11):
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def change(body: dict[str, Any]) -> None:
            barrier.wait()
            codes.append(_patch(pub, body).status_code)

        threads = [threading.Thread(target=change, args=(body,))
                   for body in ({"request_timeout_s": 100 + i}, {"max_concurrency": 100 + i})]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert codes == [200, 200], codes
        with pub.client() as c:
            spec = c.get("/services/pub")["spec"]
        if (spec["request_timeout_s"], spec["max_concurrency"]) != (100 + i, 100 + i):
            lost.append((i, spec["request_timeout_s"], spec["max_concurrency"]))
    assert not lost, f"changes lost: {lost}"
