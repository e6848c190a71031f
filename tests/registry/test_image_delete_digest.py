"""Deleting images by digest, and the ImageInUse guard, against the real registry stack (``docker-registry``,
the API, dockerd pushing as separate users) and, for what a borrowing service sees afterwards, a real reconciler
on the Docker runtime.

- ``NAME@DIGEST`` deletes exactly that manifest and the tags naming it; the other tags stay. ``arkserve image
  delete`` names those tags in its prompt and its answer; the API says them in ``X-Deleted-Tags``.
- The guard compares digests: a service pinned by digest blocks deleting the last tag of that manifest, and a
  service running a tag blocks deleting the manifest the tag names.
- Only the owner's (and the caller's) services count: another user's service running a public image neither
  blocks its owner nor is named, and at its next start it fails with ImageNotFound (the tag is gone) or
  ImagePullDenied (the repository is gone) in the registry's words.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from arkserve.cli.main import cli
from arkserve.reconciler.loop import Reconciler
from arkserve.sdk.auth import ArkAuth
from arkserve.sdk.client import ApiError
from tests.registry.conftest import Stack, wait_for
from tests.runtimes.conftest import TEST_IMAGE

pytestmark = pytest.mark.docker
BASE = {"port": 8000, "command": "exec httpd -f -p $PORT -h /", "health_path": "/", "startup_timeout_s": 30,
        "replicas": 0}
OTHER = "0" * 64


@pytest.fixture(scope="module")
def relabelled(stack: Stack) -> Iterator[str]:
    """The busybox test image with a label of its own: the same layers, another manifest digest (offline)."""
    tag = f"arkserve-test/relabelled:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=f"FROM {TEST_IMAGE}\nLABEL ark.test={tag}\n",
                   text=True, check=True, capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    yield tag
    subprocess.run(["docker", "rmi", tag], capture_output=True)


def _push(stack: Stack, who: str, repo_tag: str, source: str = TEST_IMAGE) -> str:
    pushed = stack.push(who, repo_tag, source=source)
    assert pushed.returncode == 0, pushed.stderr
    return pushed.stdout.split("digest: ", 1)[1].split()[0]


def _tags(stack: Stack, who: str, repo: str) -> dict[str, str]:
    with stack.client(who) as c:
        return {t["tag"]: t["digest"] for t in c.get(f"/images/{repo}")["tags"]}


def _refused(stack: Stack, who: str, ref: str) -> ApiError:
    with stack.client(who) as c, pytest.raises(ApiError) as err:
        c.delete(f"/images/{ref}")
    return err.value


def _cli(stack: Stack, who: str, *args: str, answer: str = "") -> tuple[int, str]:
    a = stack.accounts[who]
    env = {"ARKSERVE_ACCESS_KEY": a.ak, "ARKSERVE_SECRET_KEY": a.sk, "ARKSERVE_ENDPOINT": stack.api_url,
           "ARKSERVE_CLI_CONFIG": str(stack.tmp / "profiles.yaml")}
    result = CliRunner().invoke(cli, list(args), env=env, input=answer)
    return result.exit_code, result.output


def test_delete_by_digest_removes_that_manifest_and_its_tags_only(stack: Stack, relabelled: str) -> None:
    stack.add_user("ivy")
    assert stack.login("ivy").returncode == 0
    one = _push(stack, "ivy", "ivy/layer:v1")
    assert _push(stack, "ivy", "ivy/layer:v1b") == one  # a second tag of the same manifest
    two = _push(stack, "ivy", "ivy/layer:keep", source=relabelled)
    assert two != one

    code, out = _cli(stack, "ivy", "image", "delete", f"ivy/layer@{one}", answer="n\n")
    assert code == 1 and f"Delete ivy/layer@{one} and with it its tags v1, v1b? [y/N]" in out, out
    assert _tags(stack, "ivy", "ivy/layer") == {"v1": one, "v1b": one, "keep": two}  # said no: nothing went
    code, out = _cli(stack, "ivy", "image", "delete", f"layer@{one}", answer="y\n")
    assert code == 0 and f"deleted layer@{one} and with it its tags v1, v1b" in out, out
    assert _tags(stack, "ivy", "ivy/layer") == {"keep": two}  # the other tag stays, and still pulls
    assert stack.pull("ivy", "ivy/layer:keep").returncode == 0

    gone = _refused(stack, "ivy", f"ivy/layer@{one}")
    assert (gone.status, gone.code) == (404, "ImageNotFound") and one in gone.message, gone
    unknown = _refused(stack, "ivy", f"ivy/layer@sha256:{OTHER}")
    assert (unknown.status, unknown.code) == (404, "ImageNotFound"), unknown
    for bad in ("ivy/layer@sha256:abc", f"ivy/layer:keep@{two}"):
        refused = _refused(stack, "ivy", bad)
        assert (refused.status, refused.code) == (422, "ValidationFailed"), refused
    code, out = _cli(stack, "ivy", "image", "delete", f"ivy/layer@sha256:{OTHER}", "--yes")
    assert code == 1 and "ImageNotFound" in out, out
    assert _tags(stack, "ivy", "ivy/layer") == {"keep": two}

    # the API names the tags that went (an untagged manifest: none)
    assert _push(stack, "ivy", "ivy/layer:again") == one
    auth = ArkAuth(stack.accounts["ivy"].ak, stack.accounts["ivy"].sk)
    resp = httpx.delete(f"{stack.api_url}/api/v1/images/ivy/layer@{one}", auth=auth)
    assert resp.status_code == 204 and resp.headers["X-Deleted-Tags"] == "again", resp.text
    assert _tags(stack, "ivy", "ivy/layer") == {"keep": two}


def test_the_in_use_guard_compares_digests(stack: Stack, relabelled: str) -> None:
    stack.add_user("jill")
    assert stack.login("jill").returncode == 0
    one = _push(stack, "jill", "jill/app:v1")
    two = _push(stack, "jill", "jill/app:keep", source=relabelled)
    assert _push(stack, "jill", "jill/app:keep2", source=relabelled) == two
    with stack.client("jill") as c:
        c.post("/services", {"name": "pinned", "image": f"{stack.address}/jill/app@{two}", **BASE})
        c.post("/services", {"name": "tagged", "image": f"{stack.address}/jill/app:v1", **BASE})
        c.delete("/images/jill/app:keep")  # keep2 still names the manifest `pinned` runs: it stays
    in_use = _refused(stack, "jill", "jill/app:keep2")  # the last tag of that manifest
    assert (in_use.status, in_use.code) == (409, "ImageInUse") and 'used by service "pinned"' in in_use.message
    in_use = _refused(stack, "jill", f"jill/app@{one}")  # the manifest `tagged` runs through its tag
    assert (in_use.status, in_use.code) == (409, "ImageInUse") and 'used by service "tagged"' in in_use.message
    code, out = _cli(stack, "jill", "image", "delete", f"jill/app@{one}", "--yes")
    assert code == 1 and 'ImageInUse' in out and '"tagged"' in out, out
    assert _tags(stack, "jill", "jill/app") == {"v1": one, "keep2": two}


@pytest.fixture(scope="module")
def reconciler(stack: Stack) -> Iterator[Reconciler]:
    with stack.reconciler() as rec:
        yield rec


def _failed(stack: Stack, who: str, name: str) -> dict[str, str]:
    def failed() -> dict[str, str] | None:
        with stack.client(who) as c:
            svc: dict[str, str] = c.get(f"/services/{name}")
        return svc if svc["status"] == "failed" else None

    return wait_for(f"{name} failed", failed, timeout=90)  # type: ignore[no-any-return]


def test_another_users_service_neither_blocks_the_owner_nor_is_named(stack: Stack, reconciler: Reconciler) -> None:
    stack.add_user("kim")
    stack.add_user("lou")
    assert stack.login("kim").returncode == 0
    for ref in ("kim/pub:v1", "kim/pub:v2", "kim/pub2:v1"):
        _push(stack, "kim", ref)
    with stack.client("kim") as c:
        for repo in ("pub", "pub2"):
            c.request("PUT", f"/images/{repo}/visibility", json={"public": True})
        c.post("/services", {"name": "mine", "image": f"{stack.address}/kim/pub:v1", **BASE})
    with stack.client("lou") as c:
        for name, image in (("borrow", "kim/pub:v1"), ("borrow2", "kim/pub:v2"), ("borrow3", "kim/pub2:v1")):
            c.post("/services", {"name": name, "image": f"{stack.address}/{image}", **BASE})

    for ref in ("kim/pub:v1", "kim/pub"):  # kim's own service counts; lou's is neither counted nor named
        in_use = _refused(stack, "kim", ref)
        assert (in_use.status, in_use.code) == (409, "ImageInUse"), in_use
        assert in_use.message == (f'{ref} is used by service "mine"; delete the service or move it to another '
                                  "image first"), in_use.message
    with stack.client("kim") as c:
        c.delete("/images/kim/pub:v2")  # lou's borrow2 runs it
        c.delete("/images/kim/pub2")  # lou's borrow3 runs it

    with stack.client("lou") as c:
        c.patch("/services/borrow2", {"replicas": 1})
        c.patch("/services/borrow3", {"replicas": 1})
    svc = _failed(stack, "lou", "borrow2")
    assert svc["reason"] == "ImageNotFound" and "manifest unknown" in svc["message"], svc
    svc = _failed(stack, "lou", "borrow3")
    assert svc["reason"] == "ImagePullDenied" and "kim/pub2 is private to its owner" in svc["message"], svc
