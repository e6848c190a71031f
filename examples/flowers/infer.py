"""Flower classifier service: a Flask app serving the ResNet34 behind ``POST /flowers``.

Send the image as the multipart field ``content``; the answer is
``{"class": name, "prob": p, "replica": $ARK_REPLICA}``. ``GET /healthz`` answers 200 once the model is
loaded (it is loaded once, at start). Settings (environment):

- ``MODEL_PATH``: checkpoint (default ``flower-model.pth`` in ``$ARK_MODEL_DIR``, the model arkserve mounts
  read-only, else next to this file)
- ``CLASS_INDICES_PATH``: index -> name JSON (default ``class_indices.json`` in ``$ARK_MODEL_DIR`` when there,
  else next to this file)
- ``PORT``: listen port (default 27777), on 0.0.0.0
- ``FLOWERS_DEVICE``: ``cuda`` or ``cpu`` (default: ``cuda`` when PyTorch sees a GPU, i.e. when arkserve gave the
  replica one through ``CUDA_VISIBLE_DEVICES``); ``/healthz`` and each answer name the device
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import torch
from flask import Flask, jsonify, request
from PIL import Image, UnidentifiedImageError

from model import load_checkpoint, resnet34
from preprocess import PREPROCESS

HERE = Path(__file__).resolve().parent
DEVICE = torch.device(os.environ.get("FLOWERS_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))


def device_name() -> str:
    """``cuda:0 (NVIDIA H200)`` or ``cpu``."""
    if DEVICE.type != "cuda":
        return str(DEVICE)
    index = DEVICE.index if DEVICE.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def load_model(model_path: str, classes_path: str) -> tuple[torch.nn.Module, dict[int, str], dict]:
    """Read the class names and the checkpoint; return the model in eval mode, the names and the metadata."""
    classes = {int(k): v for k, v in json.loads(Path(classes_path).read_text()).items()}
    state, meta = load_checkpoint(model_path)
    net = resnet34(num_classes=len(classes))
    net.load_state_dict(state)
    net.eval()
    return net.to(DEVICE), classes, meta


def create_app(model_path: str, classes_path: str) -> Flask:
    """The Flask app with the model loaded once."""
    t0 = time.monotonic()
    net, classes, meta = load_model(model_path, classes_path)
    demo = bool(meta.get("demo"))
    print(f"loaded {model_path} in {time.monotonic() - t0:.1f}s on {device_name()}"
          + (" -- DEMO WEIGHTS: labels are arbitrary" if demo else ""), flush=True)
    app = Flask(__name__)

    def bad_request(message: str):
        return jsonify({"error": "bad_request", "message": message}), 400

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok", "model": model_path, "demo": demo, "device": device_name(),
                        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})

    @app.post("/flowers")
    def flowers():
        upload = request.files.get("content")
        if upload is None:
            return bad_request("send the image as the multipart form field 'content'")
        try:
            img = Image.open(io.BytesIO(upload.read()))
            img = img.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            return bad_request(f"the 'content' field is not a readable image ({type(exc).__name__})")
        with torch.no_grad():
            probs = torch.softmax(net(PREPROCESS(img).unsqueeze(0).to(DEVICE))[0], dim=0).cpu()
        idx = int(torch.argmax(probs))
        return jsonify({"class": classes[idx], "prob": round(float(probs[idx]), 4),
                        "replica": os.environ.get("ARK_REPLICA", ""), "device": device_name()})

    return app


def main() -> None:
    model_dir = Path(os.environ.get("ARK_MODEL_DIR") or HERE)  # set by arkserve when a model is mounted
    model_path = os.environ.get("MODEL_PATH") or str(model_dir / "flower-model.pth")
    classes = model_dir / "class_indices.json"
    classes_path = os.environ.get("CLASS_INDICES_PATH") or str(classes if classes.exists() else HERE / classes.name)
    port = int(os.environ.get("PORT") or 27777)
    app = create_app(model_path, classes_path)
    app.run(host="0.0.0.0", port=port, threaded=True)  # noqa: S104 - a container/replica listens on all interfaces


if __name__ == "__main__":
    main()
