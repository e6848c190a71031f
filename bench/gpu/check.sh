#!/usr/bin/env bash
# The GPU check of arkserve's capacity work (docs/capacity.md), for a machine with an NVIDIA GPU.
# Run from the repository root:  bash bench/gpu/check.sh
# - python3 (3.12) must have torch; arkserve's own dependencies come as wheels from .whl/ (downloaded on a
#   machine with PyPI, see docs/capacity.md), installed into a private folder first.
# - Writes its log to $OUT/gpu-check.log (OUT defaults to /tmp/gpu-check); exits non-zero on any failure
#   (3: no GPU), and within 6 minutes (a hard limit of 330 s on the check itself).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
PY=${ARK_CHECK_PYTHON:-python3}
SITE=${ARK_CHECK_SITE:-/var/tmp/ark-gpu-site}
{
  echo "[gpu-check] $(date -u +%FT%TZ) on $(hostname); python: $("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
  WHL=${ARK_CHECK_WHEELS:-.whl}
  if ls "$WHL"/*.whl >/dev/null 2>&1; then
    echo "[gpu-check] installing $(ls "$WHL"/*.whl | wc -l) wheels from $WHL into $SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHL"/*.whl \
      || { echo "[gpu-check] FAIL: pip install of .whl/ failed"; exit 1; }
    export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
  else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
  fi
  export ARK_CHECK_SITE=$SITE
  "$PY" -c 'import arkserve.cli.main, pynvml, fastapi, sqlalchemy' || { echo "[gpu-check] FAIL: arkserve does not import"; exit 1; }
  timeout -k 10 330 "$PY" bench/gpu/check.py
  rc=$?
  echo "[gpu-check] exit $rc"
  exit $rc
} 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
