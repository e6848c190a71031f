"""The whole walkthrough (run.sh): its own `arkserve up`, deploy, signed calls, scale to 2, spread over both.

``local`` needs Debian's python3 with torch (ARKSERVE_REQUIRE_FLOWERS=1 turns the skip into a failure).
``docker`` builds the Debian base image with debootstrap (about 3 minutes on a 2-core machine, then
cached) and needs dockerd: it runs only with ARKSERVE_FLOWERS_DOCKER=1 (CI decides whether to pay).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.examples.flowers_support import (
    FLOWERS,
    PROB_TOLERANCE,
    expected_answers,
    require_debian_torch,
    wait_healthy,
)
from tests.live import free_port

pytestmark = pytest.mark.slow


def run_walkthrough(mode: str) -> str:
    venv_bin = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARKSERVE_")}
    env |= {"FLOWERS_PLATFORM": "own", "ARKSERVE_BIN": str(venv_bin / "arkserve"), "ARKSERVE_PYTHON": sys.executable}
    done = subprocess.run([str(FLOWERS / "run.sh"), mode], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def check_output(out: str) -> None:
    """Each image got the class the shipped weights give it (run.sh's client prints no probability); the
    40 requests after the scale to 2 were spread over both replicas."""
    expected = expected_answers(FLOWERS / "flower-model.pth", FLOWERS / "images")  # run.sh made the weights
    answers = dict(re.findall(r"^(\w+\.jpg) (\w+)$", out, re.M))
    assert answers == {name: cls for name, (cls, _) in expected.items()}, out
    served = [int(n) for n in re.findall(r"^  replica \S+: (\d+) requests$", out, re.M)]
    assert len(served) == 2 and sum(served) == 40 and min(served) > 0, out


def require_docker() -> None:
    if os.environ.get("ARKSERVE_FLOWERS_DOCKER") != "1":
        pytest.skip("the flowers Docker image takes minutes to build; set ARKSERVE_FLOWERS_DOCKER=1 to run it")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("ARKSERVE_FLOWERS_DOCKER=1 but `docker info` fails (run .ci/docker.sh)")


def test_walkthrough_local_runtime() -> None:
    require_debian_torch()
    check_output(run_walkthrough("local"))


@pytest.mark.docker
def test_image_serves_the_classifier() -> None:
    require_docker()
    subprocess.run([str(FLOWERS / "build.sh")], check=True, timeout=900)
    port = free_port()
    cid = subprocess.run(["docker", "run", "-d", "--rm", "-e", "ARK_REPLICA=c1", "-p", f"127.0.0.1:{port}:27777",
                          "arkserve-examples/flowers:1"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        with subprocess.Popen(["docker", "wait", cid], stdout=subprocess.DEVNULL) as proc:  # ends if it exits
            try:
                wait_healthy(f"http://127.0.0.1:{port}", proc)
            finally:
                proc.kill()
        expected = expected_answers(FLOWERS / "flower-model.pth", FLOWERS / "images")  # the weights build.sh baked in
        for image in sorted((FLOWERS / "images").glob("*.jpg")):
            r = requests.post(f"http://127.0.0.1:{port}/flowers", files={"content": image.read_bytes()}, timeout=30)
            assert r.status_code == 200 and r.json()["replica"] == "c1", r.text
            cls, prob = expected[image.name]
            assert r.json()["class"] == cls, (image.name, r.json(), expected)
            assert r.json()["prob"] == pytest.approx(prob, abs=PROB_TOLERANCE), (image.name, r.json(), expected)
        assert requests.post(f"http://127.0.0.1:{port}/flowers", timeout=30).status_code == 400
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


@pytest.mark.docker
def check_served_from_the_registry(out: str) -> None:
    """The base went to ark-public/, the app image to the user's namespace, and the replica runs the pushed digest."""
    assert re.search(r"^pushed \S+/ark-public/pytorch:bookworm ", out, re.M), out
    pushed = re.search(r"^pushed \S+/admin/demo-flower:v1 v1: digest: (sha256:[0-9a-f]{64})", out, re.M)
    assert pushed, out
    assert "(image demo-flower:v1," in out, out  # deployed by the short form of the user's own image
    running = re.findall(r"^replica \S+ runs image digest (\S+)$", out, re.M)
    assert running and set(running) == {pushed[1]}, out


def test_walkthrough_docker_runtime() -> None:
    require_docker()
    out = run_walkthrough("docker")
    check_output(out)
    check_served_from_the_registry(out)
