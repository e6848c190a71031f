#!/usr/bin/env bash
# Publish the flower weights and class_indices.json to the model market as the public model
# flowers-resnet34, version 1 (the seeded model a new user finds there). Needs an admin's CLI profile
# (public models are curated by admins). Skips when flowers-resnet34@1 exists already.
# Makes the demo weights first when there are none (make_weights.py, on this host's python3 with torch,
# else inside the base image).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARK=${ARKSERVE_BIN:-$ROOT/.venv/bin/arkserve}; [ -x "$ARK" ] || ARK=arkserve
MODEL=${FLOWERS_MODEL_NAME:-flowers-resnet34}
VERSION=${FLOWERS_MODEL_VERSION:-1}

if "$ARK" model show "$MODEL" --version "$VERSION" >/dev/null 2>&1; then
  echo "[publish] $MODEL@$VERSION is in the model market already" >&2
  exit 0
fi
if [ ! -s "$HERE/flower-model.pth" ]; then
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$HERE/make_weights.py" --out "$HERE/flower-model.pth"
  else
    docker run --rm -v "$HERE:/w" -w /w arkserve/flowers-base:bookworm python3 make_weights.py --out flower-model.pth
  fi
fi
STAGE=$(mktemp -d /tmp/flowers-model.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ln "$HERE/flower-model.pth" "$STAGE/flower-model.pth" 2>/dev/null || cp "$HERE/flower-model.pth" "$STAGE/"
cp "$HERE/class_indices.json" "$STAGE/"
cat >"$STAGE/README.md" <<'MD'
# flowers-resnet34

A ResNet34 (torchvision's layout, 5 classes) classifying flower photos: daisy, dandelion, roses,
sunflowers, tulips. Files: `flower-model.pth` (a PyTorch checkpoint: `model_state_dict` and `metadata`)
and `class_indices.json` (index -> class name).

**Demo weights**: unless you trained them with `examples/flowers/train.py`, these are the randomly
initialised, reproducible weights of `make_weights.py`; every answer is a class name, but which one
means nothing.

Use it: mount it at `/ark/models` (`--mount model:flowers-resnet34@1:/ark/models`); the app
`examples/flowers/infer.py` reads `$ARK_MODEL_DIR/flower-model.pth` and `class_indices.json`.
MD
"$ARK" model publish "$MODEL" --version "$VERSION" "$STAGE" --public --task image-classification \
  --framework pytorch --license Apache-2.0
