"""A NUL character in any free text of a request body (a key's description, a model's card when it is published
or changed, a billing note, an instance type's description) is a 422 ``ValidationFailed`` naming the field, and
nothing is stored: PostgreSQL's text cannot hold one (it was a 500 there, and stored on SQLite). A value the store
refuses that no schema checks (a NUL in a path segment) is a 422 too, not a 500. On both stores."""

from __future__ import annotations

from typing import Any

import httpx

from arkserve.sdk.auth import ArkAuth
from tests.api.conftest import LiveApi
from tests.storage.archives import tar_of

NUL = "\u0000"


def _send(api: LiveApi, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{api.url}/api/v1{path}", json=body, auth=ArkAuth(api.admin_ak, api.admin_sk),
                         timeout=30)


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, r.text
    return r.json()


def test_a_nul_in_free_text_is_a_422_naming_the_field_and_nothing_is_stored(live_api: LiveApi) -> None:
    folder = live_api.data_dir / "disks" / "admin" / "models" / "m"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"weights")
    card = {"description": "clean", "task": "t", "framework": "f", "license": "l"}
    _ok(_send(live_api, "POST", "/models/m/versions/1", {"disk_path": "/models/m", **card}))
    keys = _ok(_send(live_api, "GET", "/keys"))
    balance = _ok(_send(live_api, "GET", "/billing/balance"))
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/keys", {"description": f"a{NUL}b"}, "description"),
        *[("PATCH", "/models/m", {field: f"x{NUL}y"}, field) for field in card],
        *[("POST", "/models/m2/versions/1", {"disk_path": "/models/m", field: f"x{NUL}"}, field) for field in card],
        ("POST", "/billing/topup", {"username": "admin", "amount": 1, "note": f"n{NUL}"}, "note"),
        ("POST", "/billing/adjustments", {"username": "admin", "amount": 1, "note": f"n{NUL}"}, "note"),
        ("POST", "/instance-types", {"name": "t1", "cpus": 1, "memory_mb": 128, "description": f"d{NUL}"},
         "description"),
    ]
    for method, path, body, field in cases:
        r = _send(live_api, method, path, body)
        assert r.status_code == 422, (path, body, r.text)
        answer = r.json()
        assert answer["code"] == "ValidationFailed" and answer["field"] == field, (path, answer)
        assert "NUL" in answer["message"] and answer["request_id"], answer
    for field in card:  # the archive form of publishing takes its card in the query
        r = httpx.put(f"{live_api.url}/api/v1/models/m3/versions/1/archive", params={field: f"x{NUL}"},
                      content=tar_of({"w.bin": b"weights"}), headers={"content-type": "application/x-tar"},
                      auth=ArkAuth(live_api.admin_ak, live_api.admin_sk), timeout=30)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert _send(live_api, "GET", "/models/m3").status_code == 404
    assert _ok(_send(live_api, "GET", "/keys")) == keys
    model = _ok(_send(live_api, "GET", "/models/m"))
    assert {k: model[k] for k in card} == card and [v["version"] for v in model["versions"]] == ["1"]
    assert _send(live_api, "GET", "/models/m2").status_code == 404
    assert _ok(_send(live_api, "GET", "/billing/balance")) == balance
    assert "t1" not in [t["name"] for t in _ok(_send(live_api, "GET", "/instance-types"))]


def test_a_value_the_store_refuses_is_a_422_not_a_500(live_api: LiveApi) -> None:
    # no schema checks a path segment for NUL: SQLite looks it up (not found), PostgreSQL refuses the value
    r = _send(live_api, "GET", "/users/a%00b")
    answer = r.json()
    if live_api.database_url.startswith("postgres"):
        assert r.status_code == 422 and answer["code"] == "ValidationFailed", r.text
        assert "NUL" in answer["message"] and answer["request_id"], answer
    else:
        assert r.status_code == 404, r.text
