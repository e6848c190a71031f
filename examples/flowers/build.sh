#!/usr/bin/env bash
# Build the example image arkserve-examples/flowers:1 (FLOWERS_APP_ONLY=1: arkserve-examples/flowers-app:1, without
# the weights, which come from the model market at run time): the base image (build_base.sh, reused when present;
# FLOWERS_FROM: build on another copy of it, e.g. the platform registry's),
# the demo weights (make_weights.py, only when there is no flower-model.pth) and `docker build`.
# make_weights runs on this host's python3 when it has torch, else inside the base image.
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=${FLOWERS_IMAGE:-arkserve-examples/flowers:1}
BASE=${FLOWERS_BASE_IMAGE:-arkserve/flowers-base:bookworm}
FROM_IMAGE=${FLOWERS_FROM:-$BASE}  # what the Dockerfile builds on (run.sh: the registry's ark-public copy)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

./build_base.sh "$@"
if [ "${FLOWERS_APP_ONLY:-0}" = 1 ]; then  # the app without weights: it reads them from a mounted model
  IMAGE=${FLOWERS_IMAGE:-arkserve-examples/flowers-app:1}
  docker build -q --build-arg "BASE=$FROM_IMAGE" -f Dockerfile.app-only -t "$IMAGE" . >/dev/null
  echo "[build] built $IMAGE (no weights: mount flowers-resnet34@1 at /ark/models)" >&2
  exit 0
fi
if [ ! -s flower-model.pth ]; then
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 make_weights.py --out flower-model.pth
  else
    docker run --rm -v "$PWD:/w" -w /w "$BASE" python3 make_weights.py --out flower-model.pth
  fi
fi
t0=$(now)
docker build -q --build-arg "BASE=$FROM_IMAGE" -t "$IMAGE" . >/dev/null
echo "[build] docker build -t $IMAGE took $(secs "$t0" "$(now)")s" >&2
