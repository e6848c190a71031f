"""``since`` of a service's events, request log and logs refuses a value that is no time at all (nan, inf, -inf,
1e309: ``float()`` reads them, and ``max(nan, created)`` matched no row, so the answer was silently empty) with the
same 422 ValidationFailed naming the parameter as ``since=garbage``; durations and unix times still work."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import running_api

SPEC = {"name": "hist", "image": "/usr/bin", "port": 27777, "command": "python3 app.py", "replicas": 0}
ROUTES = ("/services/hist/events", "/services/hist/requests", "/services/hist/logs")


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running_api(tmp_path_factory.mktemp("since")) as api, httpx.Client(
            base_url=f"{api.url}/api/v1", auth=ArkAuth(api.admin_ak, api.admin_sk), timeout=10) as c:
        c.post("/services", json=SPEC).raise_for_status()
        yield c


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "garbage"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_since_that_is_no_time_is_a_422_naming_it(admin: httpx.Client, route: str, value: str) -> None:
    resp = admin.get(route, params={"since": value})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert (body["code"], body["field"]) == ("ValidationFailed", "since")
    assert body["message"].startswith("since: ")


@pytest.mark.parametrize("route", ROUTES)
def test_durations_and_unix_times_still_work(admin: httpx.Client, route: str) -> None:
    for value in ("10m", "2h", "0", "1700000000", "1.5e9"):
        assert admin.get(route, params={"since": value}).status_code == 200, (route, value)
    events = admin.get("/services/hist/events", params={"since": "0"}).json()
    assert [e["kind"] for e in events] == ["created"]  # a finite time long ago: the service's whole history


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309"])
def test_the_ledgers_since_refuses_them_too(admin: httpx.Client, value: str) -> None:
    resp = admin.get("/billing/usage", params={"since": value})
    assert resp.status_code == 422 and resp.json()["code"] == "ValidationFailed", resp.text
    assert "since" in resp.json()["message"]
    assert admin.get("/billing/usage", params={"since": "0"}).status_code == 200
