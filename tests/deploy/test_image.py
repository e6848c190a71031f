"""The root Dockerfile (arkserve's own image): its instructions parse, it installs only from the wheels made on
the host (no network in the build), runs as the uid the manifests expect, and docs/kubernetes.md shows the exact
commands that build it. The build itself (debootstrap, minutes) is not run here: deploy/image/build.sh."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]
INSTRUCTIONS = {"FROM", "ARG", "COPY", "RUN", "ENV", "USER", "WORKDIR", "EXPOSE", "ENTRYPOINT", "CMD", "LABEL"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each logical line: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            word, _, args = pending.strip().partition(" ")
            out.append((word, args.strip()))
            pending = ""
    assert not pending, "a continuation at the end of the file"
    return out


def test_the_dockerfile_parses_and_builds_offline_from_the_debian_base() -> None:
    steps = instructions((ROOT / "Dockerfile").read_text())
    assert {word for word, _ in steps} <= INSTRUCTIONS, steps
    words = [w for w, _ in steps]
    assert words[:2] == ["ARG", "FROM"] and steps[0][1] == "BASE=arkserve/base:bookworm" and steps[1][1] == "${BASE}"
    run = " ".join(args for word, args in steps if word == "RUN")
    assert "--no-index --find-links /tmp/wheels" in run and '"arkserve[kubernetes]"' in run  # nothing downloaded
    assert ("COPY", "dist/wheels/ /tmp/wheels/") in steps
    assert ("USER", "10001:10001") in steps
    entry = dict(steps)["ENTRYPOINT"]
    assert entry == '["arkserve"]'
    ignore = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert ignore == ["*", "!dist/wheels/"]  # the context is the wheels, never the checkout
    check = subprocess.run(["bash", "-n", str(ROOT / "deploy" / "image" / "build.sh")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_the_manifests_run_the_image_as_its_user_and_the_docs_show_the_build() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    image = f"arkserve/arkserve:{version}"
    for path in (ROOT / "deploy" / "kubernetes" / "base").glob("*.yaml"):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj["kind"] == "Deployment":
                pod = obj["spec"]["template"]["spec"]
                assert pod["securityContext"]["runAsUser"] == 10001, path
                assert pod["containers"][0]["image"] == image, path
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    for command in ("bash deploy/image/build.sh", f"docker build -t {image} .",
                    'pip wheel ".[kubernetes]" -w dist/wheels', "| docker import - arkserve/base:bookworm"):
        assert command in doc, command
    script = (ROOT / "deploy" / "image" / "build.sh").read_text()
    packages = re.search(r"--include=(\S+)", script)
    assert packages is not None and packages.group(1) in doc  # the same Debian packages as the script
    assert "no live cluster" in doc
