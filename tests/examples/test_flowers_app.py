"""The flowers app under Debian's python3 (torch, torchvision, flask, PIL from apt): model, weights, HTTP.

Skips when those packages are missing, fails instead with ARKSERVE_REQUIRE_FLOWERS=1 (set it in CI).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.examples.flowers_support import (
    CLASSES,
    DEBIAN_PYTHON,
    FLOWERS,
    PROB_TOLERANCE,
    expected_answers,
    require_debian_torch,
    wait_healthy,
)
from tests.live import free_port

pytestmark = pytest.mark.slow

MODEL_CHECK = """
import torch, torchvision
from model import resnet34
from preprocess import PREPROCESS
from PIL import Image
net = resnet34().eval()
ref = torchvision.models.resnet34(num_classes=5)
ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
assert ours == {k: tuple(v.shape) for k, v in ref.state_dict().items()}, "not torchvision's resnet34 layout"
assert sum(p.numel() for p in net.parameters()) == 21287237
with torch.no_grad():
    assert tuple(net(torch.zeros(2, 3, 224, 224)).shape) == (2, 5)
assert tuple(PREPROCESS(Image.new("RGB", (500, 300))).shape) == (3, 224, 224)
print("ok")
"""


def _run(args: list[str], cwd: Path = FLOWERS) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_debian_torch()
    d = tmp_path_factory.mktemp("flowers")
    _run([DEBIAN_PYTHON, "make_weights.py", "--out", str(d / "flower-model.pth")])
    _run([DEBIAN_PYTHON, "make_images.py", "--out", str(d / "images")])
    return d


@pytest.fixture(scope="module")
def app_url(assets: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "MODEL_PATH": str(assets / "flower-model.pth"), "ARK_REPLICA": "r-test"}
    proc = subprocess.Popen([DEBIAN_PYTHON, "infer.py"], cwd=FLOWERS, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        sys.stdout.write(out.decode(errors="replace"))


def test_model_is_resnet34_with_five_classes() -> None:
    require_debian_torch()
    assert _run([DEBIAN_PYTHON, "-c", MODEL_CHECK]).strip() == "ok"


def test_demo_weights_are_deterministic_and_labelled(assets: Path, tmp_path: Path) -> None:
    _run([DEBIAN_PYTHON, "make_weights.py", "--out", str(tmp_path / "flower-model.pth")])
    first, again = (hashlib.sha256((p / "flower-model.pth").read_bytes()).hexdigest() for p in (assets, tmp_path))
    assert first == again
    meta = _run([DEBIAN_PYTHON, "-c", "import sys; from model import load_checkpoint; "
                 "print(load_checkpoint(sys.argv[1])[1]['note'])", str(assets / "flower-model.pth")])
    assert "DEMO WEIGHTS" in meta and "arbitrary" in meta


def test_make_images_is_small(assets: Path) -> None:
    images = sorted((assets / "images").glob("*.jpg"))
    assert len(images) == 5
    assert sum(p.stat().st_size for p in images) < 20_000


def test_classifies_each_image(app_url: str, assets: Path) -> None:
    assert requests.get(f"{app_url}/healthz", timeout=5).json()["demo"] is True
    expected = expected_answers(assets / "flower-model.pth", assets / "images")
    for image in sorted((assets / "images").glob("*.jpg")):
        r = requests.post(f"{app_url}/flowers", files={"content": (image.name, image.read_bytes())}, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        cls, prob = expected[image.name]
        assert body["class"] == cls, (image.name, body, expected)
        assert body["prob"] == pytest.approx(prob, abs=PROB_TOLERANCE), (image.name, body, expected)
        assert body["replica"] == "r-test"


@pytest.mark.parametrize(
    "files",
    [None, {"image": ("a.jpg", b"\xff\xd8")}, {"content": ("a.jpg", b"not an image")}, {"content": ("e", b"")}],
    ids=["no-body", "wrong-field", "not-an-image", "empty"],
)
def test_bad_uploads_get_a_clear_400(app_url: str, files: dict | None) -> None:
    r = requests.post(f"{app_url}/flowers", files=files, timeout=30)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "bad_request" and "content" in body["message"]


def test_train_writes_a_checkpoint_the_app_loads(assets: Path, tmp_path: Path) -> None:
    data = tmp_path / "photos"
    for image in (assets / "images").glob("*.jpg"):
        (data / image.stem).mkdir(parents=True)
        for i in range(2):
            (data / image.stem / f"{i}.jpg").write_bytes(image.read_bytes())
    out = tmp_path / "model" / "flower-model.pth"
    out.parent.mkdir()
    _run([DEBIAN_PYTHON, "train.py", str(data), "--epochs", "1", "--batch-size", "4", "--val-split", "0.2",
          "--workers", "0", "--out", str(out)])
    check = ("import sys; from infer import load_model; net, classes, meta = load_model(sys.argv[1], sys.argv[2]); "
             "print(meta['demo'], sorted(classes.values()))")
    printed = _run([DEBIAN_PYTHON, "-c", check, str(out), str(out.parent / "class_indices.json")])
    assert printed.strip() == f"False {sorted(CLASSES)}"
