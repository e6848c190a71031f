"""The model market and service mounts through the live REST API: publish (disk folder, uploaded tar), search,
visibility and curation, immutability, deletion refused while mounted, and every bad mount refused at create."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError, Client
from arkserve.storage.market import BlobStore
from tests.api.conftest import LiveApi  # the live_api fixture comes through tests/storage/conftest.py
from tests.storage.archives import tar_of

SPEC = {"name": "flowers", "image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 0}
WEIGHTS = b"\x80\x02weights" * 5000


def _raises(status: int, code: str, call: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _upload(c: Client, ref: str, files: dict[str, bytes], **card: Any) -> Any:
    name, version = ref.split("@")
    return c.upload("PUT", f"/models/{name}/versions/{version}/archive", _chunks(tar_of(files)),
                    params={k: v for k, v in card.items()}, content_type="application/x-tar")


def _disk(api: LiveApi, user: str, rel: str, files: dict[str, bytes]) -> None:
    root = api.data_dir / "disks" / user / rel
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def _user(api: LiveApi, name: str) -> Client:
    with api.client() as admin:
        admin.post("/users", {"username": name, "password": f"{name}-password-1"})
        key = admin.post("/keys", {"username": name})
    return api.client(key["access_key"], key["secret_key"])


def test_publish_from_disk_and_upload_then_search_show_and_immutability(live_api: LiveApi) -> None:
    _disk(live_api, "admin", "models/flowers", {"model.pth": WEIGHTS, "class_indices.json": b"{}",
                                                "README.md": b"# Flowers\nResNet34 on five flowers."})
    with live_api.client() as c:
        made = c.post("/models/flowers-resnet34/versions/1", {"disk_path": "/models/flowers", "task":
                      "image-classification", "framework": "pytorch", "license": "Apache-2.0", "public": True})
        assert made["public"] is True and made["owner"] == "admin" and made["task"] == "image-classification"
        assert made["description"].startswith("# Flowers")  # the README is the default description
        v1 = made["versions"][0]
        assert v1["version"] == "1" and v1["file_count"] == 3 and v1["digest"].startswith("sha256:")
        assert {f["path"] for f in v1["files"]} == {"model.pth", "class_indices.json", "README.md"}
        # the same files uploaded as a tar: version 2 with the same digest, and no new blob
        before = BlobStore(live_api.data_dir).usage()
        two = _upload(c, "flowers-resnet34@2", {"model.pth": WEIGHTS, "class_indices.json": b"{}",
                                                 "README.md": b"# Flowers\nResNet34 on five flowers."})
        assert two["versions"][1]["digest"] == v1["digest"] and BlobStore(live_api.data_dir).usage() == before
        _upload(c, "bert-tiny@1", {"vocab.txt": b"[CLS]"}, task="text-classification", framework="onnx")
        # immutable: publishing a version again is a conflict, by either route
        _raises(409, "VersionExists", lambda: _upload(c, "flowers-resnet34@1", {"model.pth": b"other"}))
        _raises(409, "VersionExists", lambda: c.post("/models/flowers-resnet34/versions/2",
                                                     {"disk_path": "models/flowers"}))
        assert c.get("/models/flowers-resnet34/versions/1")["digest"] == v1["digest"]
        # search and filters
        assert [m["name"] for m in c.get("/models")] == ["bert-tiny", "flowers-resnet34"]
        assert [m["name"] for m in c.get("/models", q="five flowers")] == ["flowers-resnet34"]
        assert [m["name"] for m in c.get("/models", task="text-classification")] == ["bert-tiny"]
        assert [m["name"] for m in c.get("/models", framework="pytorch")] == ["flowers-resnet34"]
        assert c.get("/models/flowers-resnet34")["size"] == len(WEIGHTS) + 2 + 35
        # bad input
        _raises(404, "ModelNotFound", lambda: c.get("/models/nope"))
        _raises(404, "ModelVersionNotFound", lambda: c.get("/models/flowers-resnet34/versions/9"))
        _raises(404, "PathNotFound", lambda: c.post("/models/x/versions/1", {"disk_path": "no/such"}))
        _raises(400, "BadPath", lambda: c.post("/models/x/versions/1", {"disk_path": "../../etc"}))
        _raises(422, "ValidationFailed", lambda: c.post("/models/Bad_Name/versions/1", {"disk_path": "models"}))
        _raises(400, "BadArchive", lambda: c.upload("PUT", "/models/x/versions/1/archive", iter([b"junk" * 300])))
        _raises(404, "ModelNotFound", lambda: c.get("/models/x"))  # nothing half-published
        paths = httpx.get(f"{live_api.url}/api/v1/openapi.json").json()["paths"]
        assert {"/api/v1/models", "/api/v1/models/{name}/versions/{version}/archive"} <= set(paths)


def test_visibility_publishing_rights_and_curation(live_api: LiveApi) -> None:
    with live_api.client() as admin:
        _upload(admin, "curated@1", {"w": b"public bytes"}, public=True)
    with _user(live_api, "bob") as bob, _user(live_api, "eve") as eve:
        _raises(403, "PublicNeedsAdmin", lambda: _upload(bob, "mine@1", {"w": b"x"}, public=True))
        mine = _upload(bob, "mine@1", {"w": b"bob's bytes"})
        assert mine["public"] is False and mine["owner"] == "bob"
        assert [m["name"] for m in eve.get("/models")] == ["curated"]  # eve sees public ones only
        assert {m["name"] for m in bob.get("/models")} == {"curated", "mine"}
        _raises(403, "ModelPrivate", lambda: eve.get("/models/mine"))
        _raises(403, "AccessDenied", lambda: _upload(eve, "mine@2", {"w": b"eve's"}))  # not her model
        _raises(403, "AccessDenied", lambda: eve.delete("/models/curated"))
        _raises(403, "PublicNeedsAdmin", lambda: bob.patch("/models/mine", {"public": True}))
        assert bob.patch("/models/mine", {"description": "# Mine"})["description"] == "# Mine"
        with live_api.client() as admin:
            assert admin.patch("/models/mine", {"public": True})["public"] is True  # curated by an admin
        assert eve.get("/models/mine")["owner"] == "bob"


def test_mounts_resolve_to_digests_and_roll_and_deletion_is_refused_while_mounted(live_api: LiveApi) -> None:
    _disk(live_api, "admin", "datasets/flowers", {"a.jpg": b"jpg"})
    with live_api.client() as c:
        digest = _upload(c, "flowers-resnet34@1", {"model.pth": WEIGHTS})["versions"][0]["digest"]
        _upload(c, "flowers-resnet34@2", {"model.pth": WEIGHTS + b"v2"})
        plain = c.post("/services", {**SPEC, "name": "plain"})
        assert plain["spec"]["mounts"] == []
        mounts = [{"source": "model", "ref": "flowers-resnet34@1", "mount_path": "/ark/models"},
                  {"source": "disk", "ref": "/datasets/flowers", "mount_path": "/data", "read_only": False}]
        svc = c.post("/services", {**SPEC, "mounts": mounts})
        got = svc["spec"]["mounts"]
        assert got[0]["digest"] == digest and got[0]["read_only"] is True
        assert got[1] == {**mounts[1], "digest": ""}
        assert svc["revision"] != c.post("/services", {**SPEC, "name": "nomounts"})["revision"]
        _raises(409, "ModelInUse", lambda: c.delete("/models/flowers-resnet34/versions/1"))
        err = _raises(409, "ModelInUse", lambda: c.delete("/models/flowers-resnet34"))
        assert "flowers" in err.message
        c.delete("/models/flowers-resnet34/versions/2")  # not mounted: goes
        # a changed mount is a new revision (rolls); a digest sent by the client is replaced by the real one
        moved = c.patch("/services/flowers", {"mounts": [{**mounts[0], "mount_path": "/models",
                                                          "digest": "sha256:" + "0" * 64}]})
        assert moved["generation"] == svc["generation"] + 1 and moved["revision"] != svc["revision"]
        assert moved["spec"]["mounts"][0]["digest"] == digest
        assert c.patch("/services/flowers", {"replicas": 0})["revision"] == moved["revision"]
        c.patch("/services/flowers", {"mounts": []})
        c.delete("/models/flowers-resnet34/versions/1")  # nothing mounts it any more
        _raises(404, "ModelVersionNotFound", lambda: c.get("/models/flowers-resnet34/versions/1"))


BAD_MOUNTS = [
    ({"source": "model", "ref": "nope@1", "mount_path": "/m"}, 404, "ModelNotFound"),
    ({"source": "model", "ref": "pub@9", "mount_path": "/m"}, 404, "ModelVersionNotFound"),
    ({"source": "model", "ref": "secret@1", "mount_path": "/m"}, 403, "ModelPrivate"),
    ({"source": "model", "ref": "pub", "mount_path": "/m"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/m", "read_only": False}, 400, "InvalidMount"),
    ({"source": "disk", "ref": "/no/such/folder", "mount_path": "/data"}, 400, "InvalidMount"),
    ({"source": "disk", "ref": "../../etc", "mount_path": "/data"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "relative/path"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/proc"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/sys/kernel"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/dev"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/a/../proc"}, 400, "InvalidMount"),
    ({"source": "model", "ref": "pub@1", "mount_path": "/data"}, 400, "InvalidMount"),  # collides
    ({"source": "model", "ref": "pub@1", "mount_path": "/data/sub"}, 400, "InvalidMount"),  # inside another
]


def test_every_bad_mount_is_refused_at_create_and_patch_and_nothing_changes(live_api: LiveApi) -> None:
    _disk(live_api, "bob", "datasets", {"x": b"x"})
    with live_api.client() as admin:
        _upload(admin, "pub@1", {"w": b"public"}, public=True)
    good = {"source": "disk", "ref": "/datasets", "mount_path": "/data"}
    with _user(live_api, "bob") as bob, _user(live_api, "eve") as eve:
        _upload(eve, "secret@1", {"w": b"eve's"})
        made = bob.post("/services", {**SPEC, "name": "existing", "mounts": [good]})
        for mount, status, code in BAD_MOUNTS:
            err = _raises(status, code, lambda m=mount: bob.post("/services", {**SPEC, "mounts": [good, m]}))
            assert "mounts.1" in err.message, (mount, err.message)
            assert [s["name"] for s in bob.get("/services")] == ["existing"], mount  # nothing created
            _raises(status, code, lambda m=mount: bob.patch("/services/existing", {"mounts": [good, m]}))
            assert bob.get("/services/existing")["revision"] == made["revision"], mount
        assert bob.post("/services", {**SPEC, "mounts": [good]})["spec"]["mounts"][0]["ref"] == "/datasets"


def test_a_bad_mount_answer_names_the_field(live_api: LiveApi) -> None:
    resp = httpx.post(f"{live_api.url}/api/v1/services", auth=ArkAuth(live_api.admin_ak, live_api.admin_sk),
                      json={**SPEC, "mounts": [{"source": "disk", "ref": "/x", "mount_path": "/proc/x"}]})
    body = resp.json()
    assert resp.status_code == 400 and body["code"] == "InvalidMount" and body["request_id"]
    assert body["field"] == "mounts.0.mount_path" and "/proc" in body["message"]


def test_the_legacy_model_field_still_works_and_collides_with_mounts(live_api: LiveApi) -> None:
    _disk(live_api, "admin", "models/v1", {"w": b"w"})
    with live_api.client() as c:
        legacy = c.post("/services", {**SPEC, "model": {"source": "disk", "ref": "models/v1", "mount_path": "/m"}})
        assert legacy["spec"]["model"]["mount_path"] == "/m" and legacy["spec"]["mounts"] == []
        _raises(400, "InvalidMount", lambda: c.post("/services", {
            **SPEC, "name": "both", "model": {"source": "disk", "ref": "models/v1", "mount_path": "/m"},
            "mounts": [{"source": "disk", "ref": "models", "mount_path": "/m"}]}))


def test_the_legacy_model_field_and_mount_paths_are_checked_like_mounts(live_api: LiveApi) -> None:
    _disk(live_api, "admin", "models/v1", {"w": b"w"})
    _disk(live_api, "admin", "data", {"x": b"x"})
    legacy = {"source": "disk", "ref": "models/v1"}
    with live_api.client() as c:
        for path in ("/proc", "/", "/dev//shm/", "/m\nx"):
            err = _raises(400, "InvalidMount", lambda p=path: c.post("/services", {**SPEC, "model": {
                **legacy, "mount_path": p}}))
            assert "model.mount_path" in err.message
        for ref in ("no/such/folder", "../../../etc"):
            err = _raises(400, "InvalidMount", lambda r=ref: c.post("/services", {**SPEC, "model": {
                **legacy, "ref": r, "mount_path": "/m"}}))
            assert "model.ref" in err.message
        for path in ("/data\u0000x", "/da\nta"):
            _raises(400, "InvalidMount", lambda p=path: c.post("/services", {**SPEC, "mounts": [
                {"source": "disk", "ref": "/data", "mount_path": p}]}))
        assert c.get("/services") == []  # nothing created
        c.post("/services", {**SPEC, "mounts": [{"source": "disk", "ref": "/data", "mount_path": "/data"}]})
        err = _raises(400, "InvalidMount", lambda: c.patch("/services/flowers", {"model": {
            **legacy, "mount_path": "/data/m"}}))  # a change of the legacy field alone is checked too
        assert "collides" in err.message
        ok = c.patch("/services/flowers", {"model": {**legacy, "mount_path": "/ark/model"}})
        assert ok["spec"]["model"]["mount_path"] == "/ark/model"


def test_a_refused_delete_names_only_the_callers_own_services(live_api: LiveApi) -> None:
    with _user(live_api, "bob") as bob, _user(live_api, "alice") as alice:
        _upload(bob, "bobm@1", {"w": b"bob's weights"})
        with live_api.client() as admin:
            admin.patch("/models/bobm", {"public": True})
        alice.post("/services", {**SPEC, "name": "alice-secret-project", "mounts": [
            {"source": "model", "ref": "bobm@1", "mount_path": "/m"}]})
        bob.post("/services", {**SPEC, "name": "bob-own", "mounts": [
            {"source": "model", "ref": "bobm@1", "mount_path": "/m"}]})
        err = _raises(409, "ModelInUse", lambda: bob.delete("/models/bobm"))
        assert "bob-own" in err.message and "alice-secret-project" not in err.message
        assert "1 service(s) of other users" in err.message
    with live_api.client() as admin:  # an admin sees every name
        err = _raises(409, "ModelInUse", lambda: admin.delete("/models/bobm/versions/1"))
        assert "alice-secret-project" in err.message and "bob-own" in err.message


def test_a_users_models_have_a_quota(tmp_path: Any) -> None:
    from tests.api.conftest import running_api

    limit = 20_000  # bytes: a quota of limit / 2**30 GiB
    with running_api(tmp_path, **{"disk.model_quota_gib": limit / 1024**3}) as api:
        blobs = BlobStore(api.data_dir)
        with _user(api, "bob") as bob:
            _upload(bob, "m@1", {"w": b"a" * 12_000})
            err = _raises(413, "ModelQuotaExceeded", lambda: _upload(bob, "m@2", {"w": b"b" * 12_000}))
            assert "12000 of 20000 bytes used" in err.message
            assert [v["version"] for v in bob.get("/models/m")["versions"]] == ["1"]  # nothing recorded
            _disk(api, "bob", "weights", {"w": b"c" * 12_000})
            _raises(413, "ModelQuotaExceeded", lambda: bob.post("/models/d/versions/1", {"disk_path": "weights"}))
            big = tar_of({"w": b"d" * 60_000})  # declared past the room: refused before the body is read
            resp = httpx.put(f"{api.url}/api/v1/models/m/versions/3/archive", content=big,
                             headers={"content-type": "application/x-tar"}, auth=bob._http.auth)
            assert resp.status_code == 413 and resp.json()["code"] == "ModelQuotaExceeded"
            _raises(413, "ModelQuotaExceeded", lambda: _upload(bob, "m@4", {"w": b"e" * 60_000}))  # streamed
            bomb = gzip.compress(tar_of({"small": b"s" * 100, "w": b"\0" * 5_000_000}))  # a few KB, 5 MB inside
            assert len(bomb) < 20_000
            _raises(413, "ModelQuotaExceeded", lambda: bob.upload("PUT", "/models/m/versions/5/archive",
                                                                  iter([bomb]), content_type="application/x-tar"))
            assert not [p for p in blobs.root.rglob("*") if p.is_file() and p.stat().st_size > 20_000]
            assert not any(blobs.tmp.iterdir())  # no spool left behind
            bob.delete("/models/m/versions/1")
            _upload(bob, "m@2", {"w": b"b" * 12_000})  # room again
        with api.client() as admin:  # admins curate the market: not limited
            _upload(admin, "curated@1", {"w": b"f" * 30_000})


def test_read_write_disk_mounts_are_refused_at_create_on_kubernetes_unless_allowed(tmp_path: Any) -> None:
    from tests.api.conftest import running_api

    rw = {"source": "disk", "ref": "/datasets", "mount_path": "/data", "read_only": False}
    for allowed in (False, True):
        with running_api(tmp_path / str(allowed), **{"runtime.kind": "kubernetes",
                                                     "runtime.kube_rw_mounts": allowed}) as api:
            _disk(api, "bob", "datasets", {"x": b"x"})
            with _user(api, "bob") as bob:
                ro = bob.post("/services", {**SPEC, "name": "ro", "mounts": [{**rw, "read_only": True}]})
                assert ro["spec"]["mounts"][0]["read_only"] is True
                if allowed:
                    assert bob.post("/services", {**SPEC, "mounts": [rw]})["spec"]["mounts"][0]["read_only"] is False
                    continue
                err = _raises(400, "InvalidMount", lambda: bob.post("/services", {**SPEC, "mounts": [rw]}))
                assert "runtime.kube_rw_mounts" in err.message and "mounts.0.read_only" in err.message
                _raises(400, "InvalidMount", lambda: bob.patch("/services/ro", {"mounts": [rw]}))
                assert [s["name"] for s in bob.get("/services")] == ["ro"]
