"""`docker login/push/pull` against the platform registry (real Distribution, real dockerd, tokens from the API):
password and AK/SK logins, the catalogue through the API, private images refused to other users until made
public, pushes past the quota refused with a message docker prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from arkserve.registry import config
from arkserve.sdk.client import ApiError
from tests.registry.conftest import Stack

pytestmark = pytest.mark.docker


def test_login_with_password_and_with_access_key_push_and_list(stack: Stack) -> None:
    alice = stack.add_user("alice")
    wrong = stack.login("alice", password="not-the-password")
    assert wrong.returncode != 0 and "wrong user name or password" in wrong.stderr, wrong.stderr
    ok = stack.login("alice")
    assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
    first = stack.push("alice", "alice/tiny:v1")
    assert first.returncode == 0, first.stderr
    assert stack.docker("alice", "logout", stack.address).returncode == 0
    assert stack.login("alice", with_key=True).returncode == 0  # AK as user name, SK as password
    second = stack.push("alice", "alice/tiny:v2")
    assert second.returncode == 0, second.stderr
    digest = second.stdout.split("digest: ", 1)[1].split()[0]
    with stack.client("alice") as c:
        repos = c.get("/images")
        one = c.get("/images/tiny")  # short name: the caller's namespace
    assert [r["name"] for r in repos] == ["alice/tiny"] and repos[0]["owner"] == "alice" and not repos[0]["public"]
    tags = {t["tag"]: t for t in one["tags"]}
    assert set(tags) == {"v1", "v2"} and tags["v2"]["digest"] == digest
    assert tags["v2"]["size"] > 100_000 and tags["v2"]["pushed_at"] is not None
    assert tags["v2"]["image"] == f"{stack.address}/alice/tiny:v2"
    with stack.client("alice") as c:
        cmds = c.get("/images/push-commands", name="tiny", tag="v3")
    assert cmds["login"] == f"docker login {stack.address} -u alice"
    assert cmds["push"] == f"docker push {stack.address}/alice/tiny:v3" and alice.ak in cmds["login_with_key"]


def test_private_images_are_refused_to_other_users_until_made_public(stack: Stack) -> None:
    stack.add_user("carol")
    stack.add_user("bob")
    assert stack.login("carol").returncode == 0 and stack.login("bob").returncode == 0
    assert stack.push("carol", "carol/secret:v1").returncode == 0
    pull = stack.pull("bob", "carol/secret:v1")
    assert pull.returncode != 0 and "denied: carol/secret is private" in pull.stderr, pull.stderr
    push = stack.push("bob", "carol/secret:v1")
    assert push.returncode != 0 and "denied: bob may push only to bob/<name>, not to carol/secret" in push.stderr
    with stack.client("bob") as c, pytest.raises(ApiError) as hidden:
        c.get("/images/carol/secret")
    assert hidden.value.status == 404  # a private repository looks missing
    with stack.client("carol") as c:
        c.request("PUT", "/images/secret/visibility", json={"public": True})
    pulled = stack.pull("bob", "carol/secret:v1")
    assert pulled.returncode == 0, pulled.stderr
    still = stack.push("bob", "carol/secret:v1")  # public means pull, never push
    assert still.returncode != 0 and "denied: bob may push only to bob/<name>" in still.stderr
    with stack.client("bob") as c:
        assert "carol/secret" in [r["name"] for r in c.get("/images", public="true")]
        assert c.get("/images") == []
        with pytest.raises(ApiError) as refused:
            c.delete("/images/carol/secret:v1")
    assert refused.value.status == 403 and refused.value.code == "AccessDenied"
    with stack.client("carol") as c:
        c.request("PUT", "/images/secret/visibility", json={"public": False})
    again = stack.pull("bob", "carol/secret:v1")
    assert again.returncode != 0 and "private" in again.stderr


def test_admins_publish_base_images_everyone_pulls(stack: Stack) -> None:
    stack.add_user("dave")
    assert stack.login("admin").returncode == 0 and stack.login("dave").returncode == 0
    assert stack.push("admin", "ark-public/base:1").returncode == 0
    refused = stack.push("dave", "ark-public/base:2")
    assert refused.returncode != 0 and "denied: only admins push to ark-public/" in refused.stderr
    assert stack.pull("dave", "ark-public/base:1").returncode == 0
    with stack.client("dave") as c:
        public = {r["name"]: r for r in c.get("/images", public="true")}
    assert public["ark-public/base"]["public"] and public["ark-public/base"]["pull"].endswith("ark-public/base:1")


def test_pushes_past_the_quota_are_refused_with_a_message(stack: Stack) -> None:
    stack.add_user("erin")
    assert stack.login("erin").returncode == 0
    assert stack.push("erin", "erin/big:v1").returncode == 0
    with stack.client("admin") as c:
        c.request("PUT", "/images/quota/erin", json={"quota_bytes": 1000})
    with stack.client("erin") as c:
        quota = c.get("/images/quota")
    assert quota["used_bytes"] > 1000 and quota["quota_bytes"] == 1000
    over = stack.push("erin", "erin/big:v2")
    assert over.returncode != 0 and "denied: storage quota exceeded: erin/ holds" in over.stderr, over.stderr
    assert stack.pull("erin", "erin/big:v1").returncode == 0  # pulling is never refused for quota
    with stack.client("admin") as c:
        c.request("PUT", "/images/quota/erin", json={"quota_bytes": None})
    assert stack.push("erin", "erin/big:v2").returncode == 0


def _unique_image(tmp: Path, tag: str, size: int = 3 * 1024 * 1024) -> None:
    """A one-layer image of ``size`` random bytes (blobs no other image shares), by `docker import`."""
    root = tmp / "junk-root"
    root.mkdir(exist_ok=True)
    (root / "junk.bin").write_bytes(os.urandom(size))
    tar = tmp / "junk.tar"
    with tarfile.open(tar, "w") as t:
        t.add(root / "junk.bin", arcname="junk.bin")
    subprocess.run(["docker", "import", str(tar), tag], check=True, capture_output=True)


def test_deleted_tags_free_their_blobs_after_garbage_collection(stack: Stack) -> None:
    stack.add_user("ivan")
    assert stack.login("ivan").returncode == 0
    local = "arkserve-test/junk:gc"
    _unique_image(stack.tmp, local)
    try:
        assert stack.push("ivan", "ivan/junk:v1", source=local).returncode == 0
        assert stack.push("ivan", "ivan/keep:v1").returncode == 0  # shares the busybox layer with other repos
        before = stack.blob_bytes()
        with stack.client("ivan") as c:
            c.delete("/images/junk:v1")
            assert [r["name"] for r in c.get("/images")] == ["ivan/keep"]  # no tag left: out of the list
        assert stack.blob_bytes() == before  # deleting only unlinks; the bytes stay until a collection
        gc = subprocess.run([sys.executable, "-m", "arkserve", "image", "gc", "-o", "json"], env=stack.env,
                            capture_output=True, text=True, timeout=300)
        assert gc.returncode == 0, gc.stderr
        report = json.loads(gc.stdout)
        freed = before - stack.blob_bytes()
        assert freed >= 3 * 1024 * 1024 and report["freed_bytes"] == freed, (report, freed)
        assert report["blobs_deleted"] >= 2  # the layer and the image config
        assert not config.readonly_marker(stack.settings.data_dir).exists()
        again = stack.push("ivan", "ivan/keep:v2")  # writable again after the pass
        assert again.returncode == 0, again.stderr
        assert stack.pull("ivan", "ivan/keep:v1").returncode == 0  # what is still tagged survived
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True)
