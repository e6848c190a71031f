"""Helpers shared by the flowers example tests: paths, free ports, Debian's python3 with torch."""

from __future__ import annotations

import json
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


# The reference answer, computed here with the example's own model code, weights and preprocessing (not
# through infer.py's handler), for each image: {file name: [class, probability]}.
EXPECTED = """
import json, sys
from pathlib import Path
import torch
from PIL import Image
from model import load_checkpoint, resnet34
from preprocess import PREPROCESS
classes = {int(k): v for k, v in json.loads(Path("class_indices.json").read_text()).items()}
state, _ = load_checkpoint(sys.argv[1])
net = resnet34(num_classes=len(classes))
net.load_state_dict(state)
net.eval()
out = {}
for path in sorted(Path(sys.argv[2]).glob("*.jpg")):
    with torch.no_grad():
        probs = torch.softmax(net(PREPROCESS(Image.open(path).convert("RGB")).unsqueeze(0))[0], dim=0)
    idx = int(torch.argmax(probs))
    out[path.name] = [classes[idx], float(probs[idx])]
print(json.dumps(out))
"""
PROB_TOLERANCE = 1e-3  # the app rounds to 4 decimals


def expected_answers(weights: Path, images: Path) -> dict[str, tuple[str, float]]:
    """What the model with ``weights`` answers for each ``*.jpg`` in ``images``: {name: (class, probability)}."""
    done = subprocess.run([DEBIAN_PYTHON, "-c", EXPECTED, str(weights), str(images)], cwd=FLOWERS,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    answers = {name: (cls, prob) for name, (cls, prob) in json.loads(done.stdout).items()}
    assert len(answers) == 5, answers
    return answers


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
