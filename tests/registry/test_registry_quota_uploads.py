"""The registry quota counts what a namespace really holds, against the real registry stack (the API, the real
``docker-registry`` under the supervisor of ``up``, dockerd pushing): unfinished blob uploads (``POST`` + ``PATCH``,
never ``PUT``) and manifest blobs count, each blob once, so a push past the quota is refused; ``image gc`` removes
an upload nobody has written to for ``UPLOAD_MAX_AGE_H`` and leaves a fresh one alone.

Uploads and manifests are sent over the registry's HTTP API with a token from the token service, as the registry
review's ``upl.py`` and ``many.py`` did.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from arkserve.registry import config
from arkserve.registry.maintenance import garbage_collect
from tests.registry.conftest import PASSWORD, Stack

pytestmark = pytest.mark.docker
MIB = 1024 * 1024
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"




def _open_upload(stack: Stack, who: str, repo: str, size: int) -> Path:
    """Begin a blob upload, send ``size`` bytes, never finish it; its directory in the registry's storage."""
    with stack.registry_client(who, repo) as reg:
        start = reg.post(f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        sent = reg.patch(start.headers["location"], content=os.urandom(size),
                         headers={"Content-Type": "application/octet-stream"})
        assert sent.status_code == 202, sent.text
        upload = start.headers["docker-upload-uuid"]
    path = config.storage_root(stack.settings.data_dir) / "docker/registry/v2/repositories" / repo / "_uploads" / upload
    assert (path / "data").stat().st_size == size
    return path


def _used(stack: Stack, who: str) -> int:
    with stack.client(who) as c:
        return int(c.get("/images/quota")["used_bytes"])


def test_open_uploads_and_manifests_count_toward_the_quota(stack: Stack) -> None:
    stack.add_user("quin")
    assert stack.login("quin").returncode == 0
    pushed = stack.push("quin", "quin/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    base = _used(stack, "quin")
    assert base > 0

    _open_upload(stack, "quin", "quin/junk", 2 * MIB)
    assert _used(stack, "quin") == base + 2 * MIB

    with stack.registry_client("quin", "quin/app") as reg:
        manifest = reg.get("/v2/quin/app/manifests/v1", headers={"Accept": MANIFEST}).json()
        padded = json.dumps({**manifest, "padding": "x" * MIB}).encode()
        for tag in ("big", "big2"):  # one manifest blob under two tags: counted once
            put = reg.put(f"/v2/quin/app/manifests/{tag}", content=padded, headers={"Content-Type": MANIFEST})
            assert put.status_code == 201, put.text
    used = _used(stack, "quin")
    assert used == base + 2 * MIB + len(padded)

    with stack.client("admin") as admin:  # more than the layers alone, less than what is held
        admin.request("PUT", "/images/quota/quin", json={"quota_bytes": base + MIB})
    refused = httpx.get(f"{stack.api_url}/api/v1/registry/token", auth=("quin", PASSWORD),
                        params={"service": "arkserve-registry", "scope": "repository:quin/other:pull,push"})
    assert refused.status_code == 403, refused.text
    assert "storage quota exceeded: quin/ holds" in refused.json()["errors"][0]["message"]
    again = stack.push("quin", "quin/app:v2")
    assert again.returncode != 0 and "denied: storage quota exceeded" in again.stderr, again.stderr


def test_gc_removes_abandoned_uploads_and_keeps_fresh_ones(stack: Stack) -> None:
    stack.add_user("ruth")
    abandoned = _open_upload(stack, "ruth", "ruth/junk", 3 * MIB)
    fresh = _open_upload(stack, "ruth", "ruth/junk", MIB)
    assert _used(stack, "ruth") == 4 * MIB
    old = time.time() - config.UPLOAD_MAX_AGE_H * 3600 - 60  # last written to just over the age ago
    for f in [abandoned, *abandoned.rglob("*")]:
        os.utime(f, (old, old), follow_symlinks=False)

    report = garbage_collect(stack.settings)

    assert not abandoned.exists() and (fresh / "data").is_file()
    assert (report.uploads_removed, report.upload_bytes) == (1, 3 * MIB)
    assert report.freed_bytes >= 3 * MIB
    assert _used(stack, "ruth") == MIB
