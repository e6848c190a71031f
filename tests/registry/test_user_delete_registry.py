"""Deleting a user takes their registry namespace away from the name, against the real registry stack (the API,
the real ``docker-registry``, dockerd pushing): a tagged image still refuses the deletion (409
``UserOwnsResources``), but an untagged manifest (a re-pushed tag's old one) and an unfinished upload neither block
it nor survive it: the next account of that name cannot pull the old manifest by digest, and its registry usage
starts at 0, even when a token of the deleted user pushed into the name after the deletion.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from arkserve.sdk.client import ApiError
from tests.registry.conftest import PASSWORD, Stack

pytestmark = pytest.mark.docker
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"




def test_a_deleted_users_untagged_manifests_do_not_pass_to_the_next_user_of_the_name(stack: Stack) -> None:
    stack.add_user("una")
    assert stack.login("una").returncode == 0
    pushed = stack.push("una", "una/app:v1")
    assert pushed.returncode == 0, pushed.stderr
    with stack.registry_client("una", "una/app") as reg:
        first = reg.get("/v2/una/app/manifests/v1", headers={"Accept": MANIFEST})
        old = first.headers["docker-content-digest"]
        again = json.dumps({**first.json(), "annotations": {"secret": "UNA-PRIVATE"}}).encode()
        put = reg.put("/v2/una/app/manifests/v1", content=again, headers={"Content-Type": MANIFEST})
        assert put.status_code == 201, put.text  # v1 re-pushed: the first manifest is untagged
        assert put.headers["docker-content-digest"] == "sha256:" + hashlib.sha256(again).hexdigest() != old
        upload = reg.post("/v2/una/app/blobs/uploads/")  # and one upload never finished
        assert reg.patch(upload.headers["location"], content=os.urandom(4096)).status_code == 202
        assert reg.get(f"/v2/una/app/manifests/{old}", headers={"Accept": MANIFEST}).status_code == 200

    with stack.client("admin") as admin:
        with pytest.raises(ApiError) as refused:  # a tagged image still refuses the deletion
            admin.delete("/users/una")
        assert refused.value.status == 409 and refused.value.code == "UserOwnsResources"
        with stack.client("una") as una:
            una.delete("/images/app:v1")
            assert una.get("/images/quota")["used_bytes"] > 0  # the untagged manifest and the upload are left
        stale = stack.registry_client("una", "una/app")  # a token of hers, valid for registry.token_ttl_s
        admin.delete("/users/una")  # untagged leftovers do not block it
    with stale:  # her token outlives the deletion: an upload recreates the namespace under her name
        late = stale.post("/v2/una/app/blobs/uploads/")
        assert stale.patch(late.headers["location"], content=os.urandom(8192)).status_code == 202

    with stack.client("admin") as admin:  # a new person of the same name, made as an admin does: none of it is theirs
        admin.post("/users", {"username": "una", "password": PASSWORD, "role": "user"})
    stack.add_user("una")  # (their keys)
    with stack.client("una") as una:
        assert una.get("/images/quota")["used_bytes"] == 0
    with stack.registry_client("una", "una/app") as reg:
        gone = reg.get(f"/v2/una/app/manifests/{old}", headers={"Accept": MANIFEST})
        assert gone.status_code == 404 and gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN", gone.text
