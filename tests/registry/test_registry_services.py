"""Services run from the platform registry on the Docker runtime: a real reconciler pulls with a token scoped to
the one repository, records the digest, and a real gateway serves signed requests; images in use cannot be
deleted; a missing tag ends as failed/ImageNotFound and a refused pull as failed/ImagePullDenied."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from arkserve.reconciler.loop import Reconciler
from arkserve.registry.pulls import RegistryPulls
from arkserve.runtimes.docker import DockerRuntime
from arkserve.sdk.auth import ArkRequestsAuth
from arkserve.sdk.client import ApiError
from tests.reconciler.conftest import FAST
from tests.registry.conftest import Stack, wait_for
from tests.runtimes.conftest import DOCKER_INSTANCE, TEST_IMAGE

pytestmark = pytest.mark.docker
SERVE = "mkdir -p /tmp/www; env > /tmp/www/env; echo ok > /tmp/www/healthz; exec httpd -f -p $PORT -h /tmp/www"


def _app_image(tmp: Path) -> str:
    """The busybox test image plus 2 MiB of random bytes in a layer of its own (docker build, offline)."""
    ctx = tmp / "app-image"
    ctx.mkdir(exist_ok=True)
    (ctx / "junk.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    (ctx / "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nCOPY junk.bin /junk.bin\n")
    tag = f"arkserve-test/regweb:{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], check=True, capture_output=True,
                   env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


@dataclass
class Parts:
    stack: Stack
    reconciler: Reconciler

    def service(self, who: str, name: str) -> dict[str, Any]:
        with self.stack.client(who) as c:
            svc: dict[str, Any] = c.get(f"/services/{name}")
        return svc


@pytest.fixture(scope="module")
def parts(stack: Stack) -> Iterator[Parts]:
    s = stack.settings
    runtime = DockerRuntime(s.data_dir, instance=DOCKER_INSTANCE)
    rec = Reconciler(stack.store, runtime, s.data_dir, FAST,
                     registry=RegistryPulls(stack.address, s.data_dir, s.registry.token_ttl_s))
    thread = threading.Thread(target=rec.run, daemon=True)
    thread.start()
    log = open(stack.tmp / "gateway.log", "ab")  # noqa: SIM115
    gateway = subprocess.Popen([sys.executable, "-m", "arkserve", "gateway", "--plain-http", "--workers", "1"],
                               env=stack.env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        yield Parts(stack, rec)
    finally:
        gateway.terminate()
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()
        rec.stop_event.set()
        thread.join(30)
        rec.stop()
        rec.stop_all_replicas(grace_s=0)
        runtime.close()


def test_service_from_a_pushed_image_serves_signed_requests(parts: Parts) -> None:
    stack = parts.stack
    frank = stack.add_user("frank")
    assert stack.login("frank").returncode == 0
    local = _app_image(stack.tmp)  # busybox + a layer of its own, so the pull has bytes to fetch
    pushed = stack.push("frank", "frank/web:v1", source=local)
    assert pushed.returncode == 0, pushed.stderr
    digest = pushed.stdout.split("digest: ", 1)[1].split()[0]
    subprocess.run(["docker", "rmi", local, f"{stack.address}/frank/web:v1"], check=True, capture_output=True)
    body = {"name": "regweb", "image": "web:v1", "port": 8000, "command": SERVE, "health_path": "/healthz",
            "startup_timeout_s": 30}
    with stack.client("frank") as c:
        created = c.post("/services", body)
    assert created["spec"]["image"] == f"{stack.address}/frank/web:v1"  # the short form, resolved
    svc = wait_for("regweb ready", lambda: (s := parts.service("frank", "regweb"))["ready"] == 1 and s, timeout=90)
    assert svc["instances"][0]["image_digest"] == digest
    auth = ArkRequestsAuth(frank.ak, frank.sk)

    def served() -> requests.Response | None:
        try:
            resp = requests.get(svc["endpoint"] + "/env", auth=auth, timeout=5)
        except requests.ConnectionError:
            return None
        return resp if resp.status_code == 200 else None

    resp = wait_for("a signed request served through the gateway", served, timeout=30)
    assert "ARK_SERVICE=regweb" in resp.text
    assert requests.get(svc["endpoint"] + "/env", timeout=5).status_code == 401  # unsigned
    with stack.client("frank") as c:
        events = c.get("/services/regweb/events")
        assert any(digest in e["message"] for e in events if e["kind"] == "started"), events
        pulls = [e["message"] for e in events if e["kind"] == "pulling"]
        # the busybox layer is already on this host; the app's own 2 MiB layer is downloaded
        assert pulls and re.fullmatch(rf"{re.escape(stack.address)}/frank/web:v1: pulled 2 of 2 layers, "
                                      r"2\.\d MB of 2\.\d MB", pulls[-1]), pulls
        for ref in ("web:v1", "web"):
            with pytest.raises(ApiError) as in_use:
                c.delete(f"/images/{ref}")
            assert in_use.value.status == 409 and in_use.value.code == "ImageInUse"
            assert 'used by service "regweb"' in in_use.value.message


def test_missing_tags_and_refused_pulls_fail_the_service_in_the_registrys_words(parts: Parts) -> None:
    stack = parts.stack
    stack.add_user("gina")
    stack.add_user("hank")
    assert stack.login("gina").returncode == 0
    assert stack.push("gina", "gina/app:v1").returncode == 0
    subprocess.run(["docker", "rmi", f"{stack.address}/gina/app:v1"], check=True, capture_output=True)
    base = {"port": 8000, "command": SERVE, "health_path": "/healthz", "startup_timeout_s": 30}
    with stack.client("gina") as c:
        c.post("/services", {"name": "regmissing", "image": "app:nope", **base})
    svc = wait_for("regmissing failed", lambda: (s := parts.service("gina", "regmissing"))["status"] == "failed" and s,
                   timeout=90)
    assert svc["reason"] == "ImageNotFound" and "manifest unknown" in svc["message"], svc
    with stack.client("hank") as c, pytest.raises(ApiError) as private:
        c.post("/services", {"name": "regsteal", "image": f"{stack.address}/gina/app:v1", **base})
    assert private.value.status == 422 and "gina/app is private" in private.value.message
    with stack.client("gina") as c:
        c.request("PUT", "/images/app/visibility", json={"public": True})
    with stack.client("hank") as c:
        c.post("/services", {"name": "regborrow", "image": f"{stack.address}/gina/app:v1", "replicas": 0, **base})
    with stack.client("gina") as c:
        c.request("PUT", "/images/app/visibility", json={"public": False})
    with stack.client("hank") as c:
        c.patch("/services/regborrow", {"replicas": 1})
    svc = wait_for("regborrow failed", lambda: (s := parts.service("hank", "regborrow"))["status"] == "failed" and s,
                   timeout=90)
    assert svc["reason"] == "ImagePullDenied" and "gina/app is private" in svc["message"], svc
