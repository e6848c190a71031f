"""Helpers shared by the flowers example tests: paths, free ports, Debian's python3 with torch."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

from tests.required import unavailable

ROOT = Path(__file__).resolve().parents[2]
FLOWERS = ROOT / "examples" / "flowers"
CLASSES = {"daisy", "dandelion", "roses", "sunflowers", "tulips"}
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_PACKAGES = "python3-torch python3-torchvision python3-flask python3-pil"


def require_debian_torch() -> None:
    """Skip (or fail, with ARKSERVE_REQUIRE_FLOWERS=1) unless Debian's python3 has torch, torchvision, flask, PIL."""
    probe = [DEBIAN_PYTHON, "-c", "import torch, torchvision, flask, PIL"]
    ok = Path(DEBIAN_PYTHON).exists() and subprocess.run(probe, capture_output=True).returncode == 0
    if ok:
        return
    unavailable("ARKSERVE_REQUIRE_FLOWERS",
                f"{DEBIAN_PYTHON} lacks torch/torchvision/flask/PIL (apt-get install {DEBIAN_PACKAGES})")


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url}/healthz did not answer within {timeout_s}s")
