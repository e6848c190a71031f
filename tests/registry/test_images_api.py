"""The images API without a registry process: the token service's refusals in the registry's format, the
OpenAPI document, the local runtime refusing registry images, `up` without the registry binary."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arkserve import settings as settings_mod
from arkserve.api.app import create_app
from arkserve.bootstrap import prepare
from arkserve.cli.server import _registry_part
from arkserve.sdk.client import ApiError, Client
from tests.live import gateway_port_base, serve


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, Client, str]]:
    env = {"ARKSERVE_CLI_CONFIG": str(tmp_path / "profiles.yaml")}
    s = settings_mod.load({"data_dir": str(tmp_path / "data"), "gateway.port_base": gateway_port_base()}, env=env)
    boot = prepare(s, env=env)
    with serve(create_app(s, boot.store, boot.master)) as url, Client(url, boot.access_key, boot.secret_key) as c:
        yield url, c, boot.admin_password or ""
    boot.store.dispose()


def test_token_service_refusals_are_registry_errors(api: tuple[str, Client, str]) -> None:
    url, _, password = api
    token_url = f"{url}/api/v1/registry/token"
    anonymous = httpx.get(token_url, params={"service": "arkserve-registry"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    body = anonymous.json()
    assert body["errors"][0]["code"] == "UNAUTHORIZED" and body["code"] == "RegistryLoginFailed"
    assert body["request_id"]
    wrong = httpx.get(token_url, auth=("admin", "nope"))
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.json()["errors"][0]["message"]
    ok = httpx.get(token_url, auth=("admin", password), params={"scope": "repository:admin/app:pull,push"})
    assert ok.status_code == 200 and ok.json()["token"].count(".") == 2 and ok.json()["expires_in"] == 300
    other = httpx.get(token_url, auth=("admin", password), params={"scope": "repository:bob/app:pull,push"})
    assert other.status_code == 403 and other.json()["errors"][0]["code"] == "DENIED"
    assert "admin may push only to admin/<name>" in other.json()["errors"][0]["message"]


def test_a_user_over_quota_gets_no_push_whichever_way_the_scope_asks(api: tuple[str, Client, str]) -> None:
    url, c, _ = api
    c.post("/users", {"username": "alice", "password": "alice-password-123", "role": "user"})
    key = c.post("/keys", {"username": "alice"})
    c.request("PUT", "/images/quota/alice", json={"quota_bytes": 0})  # 0 bytes: already over it
    token_url = f"{url}/api/v1/registry/token"
    for scope in ("repository:alice/app:pull,push", "repository:alice/app:push", "repository:alice/app:*",
                  "repository:alice/app:pull,*"):
        for auth in (("alice", "alice-password-123"), (key["access_key"], key["secret_key"])):
            refused = httpx.get(token_url, auth=auth, params={"service": "arkserve-registry", "scope": scope})
            assert refused.status_code == 403, (scope, refused.text)
            assert refused.json()["errors"][0]["code"] == "DENIED" and refused.json()["code"] == "RegistryAccessDenied"
            assert "storage quota exceeded: alice/ holds" in refused.json()["errors"][0]["message"]
    pull = httpx.get(token_url, auth=("alice", "alice-password-123"), params={"scope": "repository:alice/app:pull"})
    assert pull.status_code == 200  # pulling is never refused for quota
    claims = json.loads(base64.urlsafe_b64decode(pull.json()["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


def test_images_are_in_the_openapi_document(api: tuple[str, Client, str]) -> None:
    url, _, _ = api
    paths = httpx.get(f"{url}/api/v1/openapi.json").json()["paths"]
    for path in ("/api/v1/images", "/api/v1/images/push-commands", "/api/v1/images/quota",
                 "/api/v1/images/{name}/visibility", "/api/v1/registry/token"):
        assert path in paths, sorted(paths)


def test_the_local_runtime_refuses_registry_images(api: tuple[str, Client, str]) -> None:
    _, c, _ = api
    with pytest.raises(ApiError) as refused:
        c.post("/services", {"name": "fromreg", "image": "127.0.0.1:7782/admin/app:v1", "port": 8000,
                             "command": "serve"})
    assert refused.value.status == 422 and "--runtime docker" in refused.value.message


def test_up_without_the_registry_binary_says_what_to_install(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_mod.load({"data_dir": str(tmp_path), "runtime.kind": "docker",
                           "registry.binary": str(tmp_path / "no-such-binary")}, env={})
    assert _registry_part(s) == []
    assert "apt-get install docker-registry" in capsys.readouterr().out
    local = settings_mod.load({"data_dir": str(tmp_path), "runtime.kind": "local"}, env={})
    assert _registry_part(local) == []  # the local runtime runs no registry at all


def test_registry_logins_go_through_the_login_throttle(api: tuple[str, Client, str]) -> None:
    url, _, password = api
    token_url = f"{url}/api/v1/registry/token"
    statuses = [httpx.get(token_url, auth=("admin", "guess-" + str(i))).status_code for i in range(8)]
    assert statuses[:5] == [401] * 5 and 429 in statuses, statuses
    throttled = httpx.get(token_url, auth=("admin", password))  # even the right password waits now
    assert throttled.status_code == 429 and throttled.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert "retry in" in throttled.json()["errors"][0]["message"]


def test_up_with_the_registry_port_taken_carries_on_without_images(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = settings_mod.load({"data_dir": str(tmp_path), "runtime.kind": "docker", "registry.port": port,
                               "registry.binary": "/bin/true"}, env={})  # any binary: the port decides
        if _registry_part(s) == [] and "not free" in capsys.readouterr().out:
            return
        pytest.fail("up should have said the registry port is taken and gone on without the registry")
