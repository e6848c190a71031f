"""A model version mounted only by a service's canary is in use (on SQLite and PostgreSQL): deleting it, or its
model, is refused with 409 ModelInUse (promoting the canary would make it the stable spec), ``mounted_by``
names the service, and after a rollback the version may go."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from arkserve.sdk.client import ApiError, Client
from tests.api.conftest import LiveApi
from tests.storage.archives import tar_of

SPEC = {"name": "clf", "image": "/usr/bin", "port": 27777, "command": "python3 infer.py", "replicas": 0}


def _raises(status: int, code: str, call: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        call()
    assert (e.value.status, e.value.code) == (status, code), e.value.message
    return e.value


def _upload(c: Client, ref: str, data: bytes) -> Any:
    name, version = ref.split("@")

    def chunks() -> Iterator[bytes]:
        yield tar_of({"w.bin": data})
    return c.upload("PUT", f"/models/{name}/versions/{version}/archive", chunks(), content_type="application/x-tar")


def _mount(ref: str) -> list[dict[str, str]]:
    return [{"source": "model", "ref": ref, "mount_path": "/ark/models"}]


def test_a_version_mounted_only_by_a_canary_cannot_be_deleted(live_api: LiveApi) -> None:
    with live_api.client() as c:
        _upload(c, "amodel@1", b"v1 weights")
        _upload(c, "amodel@2", b"v2 weights")
        c.post("/services", {**SPEC, "mounts": _mount("amodel@1")})
        svc = c.patch("/services/clf", {"mounts": _mount("amodel@2"), "canary": 50})
        assert svc["canary"]["spec"]["mounts"][0]["ref"] == "amodel@2"
        assert svc["spec"]["mounts"][0]["ref"] == "amodel@1"  # only the canary mounts @2

        err = _raises(409, "ModelInUse", lambda: c.delete("/models/amodel/versions/2"))
        assert "clf" in err.message
        _raises(409, "ModelInUse", lambda: c.delete("/models/amodel"))
        assert c.get("/models/amodel")["mounted_by"] == ["clf"]
        assert [v["version"] for v in c.get("/models/amodel")["versions"]] == ["1", "2"]  # both still there

        c.post("/services/clf/canary/rollback", {})  # nothing mounts @2 any more
        c.delete("/models/amodel/versions/2")
        _raises(404, "ModelVersionNotFound", lambda: c.get("/models/amodel/versions/2"))
        _raises(409, "ModelInUse", lambda: c.delete("/models/amodel/versions/1"))  # the stable spec's
