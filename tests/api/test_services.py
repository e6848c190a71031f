"""The services resource through REST: validation naming the field, visibility, scaling vs rolling, events."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from tests.api.conftest import LiveApi

SPEC = {"name": "flowers", "image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 1}


def _raises(status: int, code: str, call) -> ApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value


def test_create_get_list_and_endpoint(live_api: LiveApi) -> None:
    base = live_api.port_base
    with live_api.client() as c:
        made = c.post("/services", SPEC)
        assert made["status"] == "pending" and made["endpoint"] == f"https://127.0.0.1:{base}"
        assert made["spec"]["auth"] is True and made["spec"]["instance_type"] == "cpu.small"
        second = c.post("/services", {**SPEC, "name": "second"})
        assert second["endpoint"] == f"https://127.0.0.1:{base + 1}"
        assert [s["name"] for s in c.get("/services")] == ["flowers", "second"]
        assert c.get("/services/flowers")["revision"] == made["revision"]
        _raises(409, "ServiceExists", lambda: c.post("/services", SPEC))
        kinds = [e["kind"] for e in c.get("/services/flowers/events")]
        assert kinds == ["created"]


def test_a_gateway_port_another_program_holds_is_skipped(live_api: LiveApi) -> None:
    # e.g. a second arkserve on this host: the gateway binds with SO_REUSEPORT and would share the port
    # with it (each answering half the connections); a port held by anything else would stay dead
    base = live_api.port_base
    with socket.create_server(("127.0.0.1", base + 1)), live_api.client() as c:
        assert c.post("/services", SPEC)["endpoint"] == f"https://127.0.0.1:{base}"
        assert c.post("/services", {**SPEC, "name": "second"})["endpoint"] == f"https://127.0.0.1:{base + 2}"
    with live_api.client() as c:  # ports are handed out upwards (one index lookup): a skipped one stays a gap
        assert c.post("/services", {**SPEC, "name": "third"})["endpoint"] == f"https://127.0.0.1:{base + 3}"
        c.delete("/services/second")  # a deleted service's port is not given at once to the next service
        assert c.post("/services", {**SPEC, "name": "fourth"})["endpoint"] == f"https://127.0.0.1:{base + 4}"


@pytest.mark.parametrize(("patch", "field"), [
    ({"name": "Not_A_Label"}, "name"),
    ({"name": "x" * 64}, "name"),
    ({"port": 0}, "port"),
    ({"port": 70000}, "port"),
    ({"command": ""}, "command"),
    ({"replicas": -1}, "replicas"),
    ({"env": {"PORT": "1"}}, "env"),
    ({"env": {"1BAD": "x"}}, "env"),
    ({"health_path": "healthz"}, "health_path"),
    ({"model": {"source": "disk", "mount_path": "relative"}}, "model.mount_path"),
    ({"instance_type": "gpu.nonexistent"}, "instance_type"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_fields_are_named(live_api: LiveApi, patch: dict[str, object], field: str) -> None:
    resp = httpx.post(f"{live_api.url}/api/v1/services", json={**SPEC, **patch},
                      auth=ArkAuth(live_api.admin_ak, live_api.admin_sk))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["code"] == "ValidationFailed" and body["field"] == field and body["request_id"]
    with live_api.client() as c:
        assert c.get("/services") == []  # nothing half-created


def test_scaling_keeps_the_revision_and_spec_changes_roll(live_api: LiveApi) -> None:
    with live_api.client() as c:
        made = c.post("/services", SPEC)
        scaled = c.patch("/services/flowers", {"replicas": 3})
        assert scaled["replicas"] == 3 and scaled["revision"] == made["revision"]
        assert scaled["generation"] == made["generation"]
        public = c.patch("/services/flowers", {"auth": False})  # applies in place
        assert public["spec"]["auth"] is False and public["revision"] == made["revision"]
        rolled = c.patch("/services/flowers", {"image": "/usr/lib", "env": {"MODE": "fast"}})
        assert rolled["revision"] != made["revision"] and rolled["generation"] == made["generation"] + 1
        assert rolled["spec"]["port"] == 27777  # untouched fields stay
        _raises(422, "ValidationFailed", lambda: c.patch("/services/flowers", {"replicas": 1001}))  # 1 000 is the cap
        events = [e["kind"] for e in c.get("/services/flowers/events")]
        assert events == ["created", "scaled", "updated", "updated"]


def test_users_see_only_their_services(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        admin.post("/users", {"username": "ursula", "password": "ursula-password"})
        key = admin.post("/keys", {"username": "ursula"})
        admin.post("/services", SPEC)
    with live_api.client(key["access_key"], key["secret_key"]) as ursula:
        assert ursula.get("/services") == []
        for call in (lambda: ursula.get("/services/flowers"), lambda: ursula.delete("/services/flowers"),
                     lambda: ursula.patch("/services/flowers", {"replicas": 0}),
                     lambda: ursula.get("/services/flowers/requests")):
            _raises(404, "ServiceNotFound", call)
        ursula.post("/services", {**SPEC, "name": "mine"})
        assert [s["name"] for s in ursula.get("/services")] == ["mine"]
    with live_api.client() as admin:
        assert {s["name"] for s in admin.get("/services")} == {"flowers", "mine"}


def test_delete_marks_the_service_for_draining(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", SPEC)
        c.delete("/services/flowers")
        svc = c.get("/services/flowers")  # the reconciler removes it once its replicas are gone
        assert svc["status"] == "deleting"
        _raises(422, "ValidationFailed", lambda: c.get("/services/flowers/requests", since="yesterday"))


def test_the_legacy_model_field_sends_market_models_to_mounts(live_api: LiveApi) -> None:
    resp = httpx.post(f"{live_api.url}/api/v1/services", auth=ArkAuth(live_api.admin_ak, live_api.admin_sk),
                      json={**SPEC, "model": {"source": "market", "ref": "resnet:1", "mount_path": "/models"}})
    assert resp.status_code == 422 and resp.json()["field"] == "model.source"
    assert "'mounts'" in resp.json()["message"]  # market models mount through spec.mounts


def _logs(c, name: str, **params: object) -> str:  # type: ignore[no-untyped-def]
    return "".join(c.stream_text(f"/services/{name}/logs", **params))


def test_a_replica_name_is_never_a_path_into_other_logs(live_api: LiveApi) -> None:
    logs = live_api.data_dir / "logs"
    for folder, replica, text in (("mine", "r00000001", "my line"), ("theirs", "r0badbad", "their secret")):
        (logs / folder).mkdir(parents=True)
        (logs / folder / f"{replica}.log").write_text(f"2099-01-01T00:00:00.000000Z {replica} {text}\n")
    (live_api.data_dir / "outside.log").write_text("2099-01-01T00:00:00.000000Z x outside\n")
    with live_api.client() as c:
        c.post("/services", {**SPEC, "name": "mine", "replicas": 0})
        assert "my line" in _logs(c, "mine", replica="r00000001")
        for replica in ("../theirs/r0badbad", "../../outside", "..", "./r00000001", "r/x"):
            for path in ("logs", "requests"):
                err = _raises(422, "ValidationFailed", lambda p=path, r=replica: (
                    _logs(c, "mine", replica=r) if p == "logs" else c.get("/services/mine/requests", replica=r)))
                assert "replica" in err.message


def test_a_new_service_does_not_inherit_the_history_of_a_deleted_one_of_the_same_name(live_api: LiveApi) -> None:
    import time

    from arkserve.logs import remove_service_logs
    from arkserve.store import events as event_store
    from arkserve.store import services as service_store
    from arkserve.store.db import open_store

    store = open_store(live_api.database_url or f"sqlite:///{live_api.data_dir}/arkserve.db", migrate_schema=False)
    logs = live_api.data_dir / "logs" / "reused"
    with live_api.client() as admin:
        admin.post("/users", {"username": "ursula", "password": "ursula-password"})
        key = admin.post("/keys", {"username": "ursula"})
        admin.post("/services", {**SPEC, "name": "reused", "replicas": 0})
        with store.begin() as conn:  # what the gateway logs for a call, and a replica's output
            event_store.insert_requests(conn, [dict(
                time=time.time(), service="reused", replica="r0ld0ld0", method="GET", path="/?token=admin-only",
                status=200, latency_ms=1.0, bytes_in=0, bytes_out=2, access_key=live_api.admin_ak,
                client="127.0.0.1", request_id="x")])
        logs.mkdir(parents=True)
        (logs / "r0ld0ld0.log").write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}.000000Z r0ld0ld0 "
                                           "the old owner's line\n")
        admin.delete("/services/reused")
        time.sleep(0.01)  # the clock moves on between the old service's last record and the new one's creation
        with store.begin() as conn:  # what the reconciler leaves once the replicas are gone (worker._status)
            service_store.remove(conn, service_store.get(conn, "reused").id)
            event_store.record(conn, "reused", "deleted", "service deleted")
        keep = logs.with_name("kept")  # the reconciler removes the folder (below); here its files stay to be seen
        logs.rename(keep)
    with live_api.client(key["access_key"], key["secret_key"]) as ursula:
        ursula.post("/services", {**SPEC, "name": "reused", "replicas": 0})
        keep.rename(logs)
        assert [e["kind"] for e in ursula.get("/services/reused/events")] == ["created"]
        assert ursula.get("/services/reused/requests") == []
        assert _logs(ursula, "reused") == "" and _logs(ursula, "reused", since="1d") == ""
        assert ursula.get("/services/reused/metrics")["totals"]["requests"] == 0
    remove_service_logs(logs.parent, "reused")  # and the folder goes at once, with everything in it
    assert not logs.exists() and not list(logs.parent.iterdir())
    store.dispose()


def test_a_command_or_image_with_a_nul_byte_is_refused_at_once(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for bad in ({"command": "python3\x00 app.py"}, {"image": "/usr\x00/bin"}, {"health_path": "/h\tx"}):
            err = _raises(422, "ValidationFailed", lambda b=bad: c.post("/services", {**SPEC, **b}))
            assert next(iter(bad)) in err.message
        assert c.get("/services") == []
        c.post("/services", SPEC)
        _raises(422, "ValidationFailed", lambda: c.patch("/services/flowers", {"command": "x\x00y"}))
        assert c.get("/services/flowers")["spec"]["command"] == SPEC["command"]


def test_the_hosts_own_state_is_never_an_app_directory(live_api: LiveApi, tmp_path: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to("/proc/self")  # resolved before the check
    with live_api.client() as c:
        for image in ("/proc", "/proc/1", "/sys/kernel", "/dev", "/run", str(link)):
            err = _raises(422, "ValidationFailed", lambda i=image: c.post("/services", {**SPEC, "image": i}))
            assert "the host's own state" in err.message, (image, err.message)
        assert c.get("/services") == []
        c.post("/services", SPEC)
        _raises(422, "ValidationFailed", lambda: c.patch("/services/flowers", {"image": "/proc"}))


def test_an_app_directory_overlapping_the_data_dir_is_refused_at_create_not_at_start(live_api: LiveApi,
                                                                                      tmp_path: Path) -> None:
    """The local runtime refuses it at start (``sandbox.inside_data_dir``), so a service created with it only
    crash-looped; the API now applies the same rule at create and on PATCH (422, nothing created or changed)."""
    data = live_api.data_dir  # tmp_path / "data"
    (data / "app").mkdir()
    (tmp_path / "to-data").symlink_to(data)
    own = tmp_path / "app"
    own.mkdir()
    with live_api.client() as c:
        for image in (str(data), str(data / "app"), str(tmp_path), str(tmp_path / "to-data")):
            err = _raises(422, "ValidationFailed", lambda i=image: c.post("/services", {**SPEC, "image": i}))
            assert "overlaps the platform's data directory" in err.message and err.request_id, (image, err.message)
        assert c.get("/services") == []
        c.post("/services", {**SPEC, "image": str(own)})  # beside the data dir: fine
        _raises(422, "ValidationFailed", lambda: c.patch("/services/flowers", {"image": str(data / "app")}))
        assert c.get("/services/flowers")["spec"]["image"] == str(own)


def test_a_partial_autoscale_with_a_replica_count_is_a_clear_answer_not_a_500(live_api: LiveApi) -> None:
    with live_api.client() as c:
        c.post("/services", {**SPEC, "replicas": 0})
        # a partial setting on a service that has none is checked whole, then it conflicts with the count
        err = _raises(409, "AutoscalerOn",
                      lambda: c.patch("/services/flowers", {"replicas": 2, "autoscale": {"max": 3}}))
        assert "0-3 replicas" in err.message, err.message  # min defaults to 0
        _raises(422, "ValidationFailed", lambda: c.patch("/services/flowers", {"autoscale": {"min": 5, "max": 3}}))
        assert c.get("/services/flowers")["spec"]["autoscale"] is None  # nothing changed
