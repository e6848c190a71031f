#!/usr/bin/env bash
# The flowers walkthrough, end to end:
#   build -> deploy on arkserve -> wait ready -> classify images/ through the signed endpoint
#   -> scale to 2 -> send 40 more -> print how many each instance served (from the request log).
# Usage: run.sh [docker|local]
#   docker  built by build.sh (the base image is reused when present). On a platform with its image registry
#           (arkserve up --runtime docker): the base is published as <registry>/ark-public/pytorch:bookworm (as
#           admin), the app image is built FROM it, pushed as <registry>/<you>/demo-flower:v1 (docker login with
#           the profile's AK/SK) and deployed as --image demo-flower:v1. Without a registry: the local image
#           arkserve-examples/flowers:1.
#   local   this folder as the "image" on the local runtime, run by Debian's /usr/bin/python3
#           (python3-torch python3-torchvision python3-flask python3-pil; installed here when missing, as root)
# Model: FLOWERS_MODEL=image (default: the weights are in the image / app folder) or market (publish them to the
#   model market as flowers-resnet34@1 with publish_model.sh, run an app without weights, and mount the model at
#   /ark/models, where infer.py reads $ARK_MODEL_DIR).
# Platform: FLOWERS_PLATFORM=auto (default: the CLI profile's platform when `arkserve whoami` works, else own),
#   own (always start `arkserve up` in a temp dir, stopped at the end) or profile (never start one).
# Other knobs: FLOWERS_SERVICE (name, default flowers), FLOWERS_INSTANCE_TYPE, FLOWERS_KEEP=1 (keep the service,
# the platform started here and its temp dir).
set -euo pipefail
MODE=${1:-docker}
case $MODE in docker|local) ;; *) echo "usage: run.sh [docker|local]" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ARK=${ARKSERVE_BIN:-$ROOT/.venv/bin/arkserve}; [ -x "$ARK" ] || ARK=arkserve
PY=${ARKSERVE_PYTHON:-$ROOT/.venv/bin/python}; [ -x "$PY" ] || PY=python3  # needs the arkserve SDK (client.py)
NAME=${FLOWERS_SERVICE:-flowers}
MODEL=${FLOWERS_MODEL:-image}
case $MODEL in image|market) ;; *) echo "run.sh: FLOWERS_MODEL must be image or market" >&2; exit 2 ;; esac
APP_ONLY=""  # market + local: the app folder without weights
DEB_PACKAGES="python3-torch python3-torchvision python3-flask python3-pil"
WORK=$(mktemp -d /tmp/flowers-run.XXXXXX)
UP_PID="" CREATED=0 TIMINGS="" REGISTRY="" NAMESPACE="" PUBLIC_BASE=""
log() { printf '\n[run %s] %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
timed() { local label=$1 t0; shift; t0=$(now); "$@"; TIMINGS+="$(printf '  %-34s %6ss' "$label" "$(secs "$t0" "$(now)")")"$'\n'; }
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# gateway ports are handed out upwards from a base: take one below the ephemeral range, so that no
# client socket or replica port can grab it in the meantime
gateway_base() { "$PY" -c '
import random, socket
while True:
    base = random.randrange(20000, 31900)
    try:
        for p in range(base, base + 10):
            socket.socket().bind(("127.0.0.1", p))
    except OSError:
        continue
    print(base)
    break'; }
json_field() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

cleanup() {
  local rc=$?
  if [ "${FLOWERS_KEEP:-0}" = 1 ]; then
    [ -z "$UP_PID" ] || echo "run.sh: platform left running (pid $UP_PID): export ARKSERVE_CLI_CONFIG=$ARKSERVE_CLI_CONFIG;" \
      "stop it with: kill $UP_PID (after \`arkserve service delete $NAME --yes\`)" >&2
    echo "run.sh: kept the service and $WORK" >&2; return
  fi
  if [ "$CREATED" = 1 ]; then
    log "deleting service $NAME"; "$ARK" service delete "$NAME" --yes >/dev/null || true
    # Let the reconciler stop the replicas before the platform goes (else local replicas outlive it).
    for _ in $(seq 1 120); do "$ARK" service get "$NAME" >/dev/null 2>&1 || break; sleep 0.5; done
  fi
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    log "stopping the platform (pid $UP_PID)"; kill -TERM "$UP_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$UP_PID" 2>/dev/null || true
  fi
  [ -z "$APP_ONLY" ] || rm -rf "$APP_ONLY"
  if [ "$rc" = 0 ]; then rm -rf "$WORK"; else echo "run.sh: failed (rc $rc); logs kept in $WORK" >&2; fi
}
trap cleanup EXIT

start_platform() {
  export ARKSERVE_CLI_CONFIG=$WORK/profiles.yaml
  local api_port flags=(--data-dir "$WORK/data" --api-port "$(free_port)")
  api_port=${flags[3]}
  local help gw_port; help=$("$ARK" up --help); gw_port=$(gateway_base)
  if grep -q -- '--runtime' <<<"$help"; then flags+=(--runtime "$MODE"); fi
  if grep -q -- '--gateway-port-base' <<<"$help"; then flags+=(--gateway-port-base "$gw_port"); fi
  log "starting arkserve up (runtime $MODE, API port $api_port, data $WORK/data)"
  # a free gateway admin port too, so a second arkserve on this host (e.g. a test's) does not stop this one
  # and its own registry port, and a Docker instance label: it neither adopts nor stops another's containers
  ARKSERVE_RUNTIME=$MODE ARKSERVE_GATEWAY_PORT_BASE=$gw_port ARKSERVE_GATEWAY_ADMIN_PORT=$(free_port) \
    ARKSERVE_REGISTRY_PORT=$(free_port) ARKSERVE_DOCKER_INSTANCE=flowers-$$ \
    "$ARK" up "${flags[@]}" >"$WORK/up.log" 2>&1 &
  UP_PID=$!
  for _ in $(seq 1 120); do
    "$ARK" whoami >/dev/null 2>&1 && return 0
    kill -0 "$UP_PID" 2>/dev/null || { tail -n 30 "$WORK/up.log" >&2; echo "run.sh: arkserve up exited" >&2; return 1; }
    sleep 0.5
  done
  tail -n 30 "$WORK/up.log" >&2; echo "run.sh: arkserve up did not answer within 60s" >&2; return 1
}

ensure_debian_torch() {
  /usr/bin/python3 -c 'import torch, torchvision, flask, PIL' 2>/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "run.sh: install $DEB_PACKAGES (apt, as root) for local mode" >&2; return 1; }
  log "apt-get install $DEB_PACKAGES"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    $DEB_PACKAGES >/dev/null
}

registry_login() {  # log in to the platform's registry with the profile's AK/SK; sets REGISTRY ("" without one)
  local push reg ak sk
  push=$("$ARK" image push-commands -o json) || return 0
  reg=$(json_field registry <<<"$push")
  "$PY" -c 'import httpx, sys; sys.exit(httpx.get(f"http://{sys.argv[1]}/v2/", timeout=5).status_code != 401)' \
    "$reg" 2>/dev/null || { log "no image registry at $reg (arkserve up --runtime docker runs one): using local images"
                            return 0; }
  { read -r ak; read -r sk; } < <("$PY" - "${ARKSERVE_PROFILE:-default}" <<'PY'
import os, sys
from arkserve.sdk.profiles import config_path, load_all
p = load_all(config_path())[sys.argv[1]]
print(os.environ.get("ARKSERVE_ACCESS_KEY") or p.access_key)
print(os.environ.get("ARKSERVE_SECRET_KEY") or p.secret_key)
PY
)
  export DOCKER_CONFIG=$WORK/docker  # this run's login stays in its temp dir, not in ~/.docker
  printf '%s' "$sk" | docker login "$reg" -u "$ak" --password-stdin >/dev/null
  REGISTRY=$reg NAMESPACE=$(json_field username <<<"$push")
  log "logged in to the platform registry $REGISTRY with the access key $ak"
}

push() {  # docker push $1, printing the digest the registry stored
  docker push "$1" | grep -E '^[^ ]+: digest: sha256:' | sed "s|^|pushed $1 |" >&2
}

publish_base() {  # the PyTorch base as a public image (admins push ark-public/; others reuse it when there)
  PUBLIC_BASE=$REGISTRY/ark-public/pytorch:bookworm
  "$HERE/build_base.sh"
  docker tag arkserve/flowers-base:bookworm "$PUBLIC_BASE"
  push "$PUBLIC_BASE" || docker pull -q "$PUBLIC_BASE" >/dev/null || {
    echo "run.sh: cannot push $PUBLIC_BASE (only admins may publish ark-public/ images) and it is not there yet:" \
      "ask an admin to run this walkthrough once" >&2; return 1; }
}

build() {
  if [ "$MODE" = docker ]; then registry_login; fi
  if [ "$MODE" = docker ] && [ -n "$REGISTRY" ]; then
    timed "publish the base to ark-public/" publish_base
    local repo=demo-flower; [ "$MODEL" = market ] && repo=demo-flower-app
    local target=$REGISTRY/$NAMESPACE/$repo:v1
    if [ "$MODEL" = market ]; then FLOWERS_APP_ONLY=1 FLOWERS_FROM=$PUBLIC_BASE FLOWERS_IMAGE=$target "$HERE/build.sh"
    else FLOWERS_FROM=$PUBLIC_BASE FLOWERS_IMAGE=$target "$HERE/build.sh"; fi
    timed "push $repo:v1" push "$target"
    IMAGE=$repo:v1 COMMAND="python3 infer.py"  # the short form: <registry>/<you>/$repo:v1
  elif [ "$MODE" = docker ] && [ "$MODEL" = market ]; then
    FLOWERS_APP_ONLY=1 "$HERE/build.sh"
    IMAGE=${FLOWERS_IMAGE:-arkserve-examples/flowers-app:1} COMMAND="python3 infer.py"
  elif [ "$MODE" = docker ]; then
    "$HERE/build.sh"
    IMAGE=${FLOWERS_IMAGE:-arkserve-examples/flowers:1} COMMAND="python3 infer.py"
  elif [ "$MODEL" = market ]; then
    ensure_debian_torch
    APP_ONLY=$(mktemp -d /tmp/flowers-app.XXXXXX)  # readable by the sandbox's unprivileged user
    chmod 755 "$APP_ONLY"
    cp "$HERE/model.py" "$HERE/preprocess.py" "$HERE/infer.py" "$APP_ONLY/"
    IMAGE=$APP_ONLY COMMAND="/usr/bin/python3 infer.py"
  else
    ensure_debian_torch
    [ -s "$HERE/flower-model.pth" ] || /usr/bin/python3 "$HERE/make_weights.py" --out "$HERE/flower-model.pth"
    IMAGE=$HERE COMMAND="/usr/bin/python3 infer.py"
  fi
  if ! ls "$HERE"/images/*.jpg >/dev/null 2>&1; then
    if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then /usr/bin/python3 "$HERE/make_images.py"
    else docker run --rm -v "$HERE:/w" -w /w arkserve/flowers-base:bookworm python3 make_images.py --out /w/images; fi
  fi
}

wait_ready() {  # until `service get` reports $1 ready replicas (also covers a --wait that returns early)
  local want=$1 ready
  for _ in $(seq 1 240); do
    ready=$("$ARK" service get "$NAME" -o json | json_field ready)
    [ "$ready" -ge "$want" ] && return 0
    sleep 0.5
  done
  echo "run.sh: $NAME has $ready of $want replicas ready after 120s" >&2; "$ARK" service get "$NAME" >&2; return 1
}

by_replica() {  # count the request-log entries of the ids in $1 by replica; poll until all are logged
  local ids=$1 want; want=$(wc -l <"$ids")
  for _ in $(seq 1 30); do
    "$ARK" service requests "$NAME" --since 10m --limit 1000 -o json >"$WORK/requests.json"
    "$PY" - "$ids" "$WORK/requests.json" "$want" <<'PY' && return 0
import collections, json, sys
ids = set(open(sys.argv[1]).read().split())
log = [e for e in json.load(open(sys.argv[2])) if e.get("request_id") in ids]
if len(log) < int(sys.argv[3]):
    sys.exit(1)
counts = collections.Counter(e.get("replica") for e in log)
for replica, n in sorted(counts.items()):
    print(f"  replica {replica}: {n} requests")
if len(counts) < 2:
    print("  (all requests went to one replica: not spread!)")
    sys.exit(3)
PY
    [ $? = 3 ] && return 1
    sleep 1
  done
  echo "run.sh: the request log did not list all $want requests" >&2; return 1
}

platform_runtime() {  # the runtime of the CLI profile's platform (its /api/v1/healthz says), or "" when unknown
  "$PY" - "${ARKSERVE_PROFILE:-default}" <<'PY' 2>/dev/null || true
import os, sys
import httpx
from arkserve.sdk.profiles import config_path, load_all
endpoint = os.environ.get("ARKSERVE_ENDPOINT") or load_all(config_path())[sys.argv[1]].endpoint
print(httpx.get(endpoint.rstrip("/") + "/api/v1/healthz", timeout=5).json().get("runtime", ""))
PY
}

check_runtime() {  # the walkthrough's mode must match the runtime of a platform it did not start
  local runtime why; runtime=$(platform_runtime)
  if [ -z "$runtime" ] || [ "$runtime" = "$MODE" ]; then return 0; fi
  if [ "$MODE" = docker ]; then why="it deploys the image arkserve-examples/flowers:1, which only the Docker runtime runs"
  else why="it deploys this folder as an app directory, which only the local runtime runs"; fi
  cat >&2 <<EOF
run.sh: the platform of your CLI profile runs the $runtime runtime, but 'run.sh $MODE' needs the $MODE runtime
  ($why). Do one of:
  - run the walkthrough that fits that platform:      examples/flowers/run.sh $runtime
  - restart the platform on the $MODE runtime:         arkserve down (or Ctrl-C in its terminal), then
                                                      arkserve up --runtime $MODE
  - let run.sh start a private platform for this run: FLOWERS_PLATFORM=own examples/flowers/run.sh $MODE
EOF
  exit 1
}

case ${FLOWERS_PLATFORM:-auto} in
  own) start_platform ;;
  profile) "$ARK" whoami >/dev/null; check_runtime ;;
  *) if "$ARK" whoami >/dev/null 2>&1; then log "using the platform of the CLI profile"; check_runtime
     else start_platform; fi ;;
esac
timed "build ($MODE)" build
if "$ARK" service get "$NAME" -o json >/dev/null 2>&1; then
  echo "run.sh: a service named $NAME exists already; delete it or set FLOWERS_SERVICE" >&2; exit 1
fi
extra=(); [ -n "${FLOWERS_INSTANCE_TYPE:-}" ] && extra+=(--instance-type "$FLOWERS_INSTANCE_TYPE")
if [ "$MODEL" = market ]; then
  log "publishing the weights to the model market (flowers-resnet34@1)"
  timed "publish to the model market" env ARKSERVE_BIN="$ARK" "$HERE/publish_model.sh"
  extra+=(--mount model:flowers-resnet34@1:/ark/models)
fi
log "deploying $NAME (image $IMAGE, command: $COMMAND)"
CREATED=1
timed "create + wait ready (1 replica)" "$ARK" service create "$NAME" --image "$IMAGE" --port 27777 \
  --command "$COMMAND" --replicas 1 --health-path /healthz "${extra[@]}" --wait
ENDPOINT=$("$ARK" service get "$NAME" -o json | json_field endpoint)
"$ARK" service get "$NAME" -o json | "$PY" -c 'import json, sys
for r in json.load(sys.stdin)["instances"]:
    print("replica", r["id"], "runs image digest", r.get("image_digest") or "-")' >&2
ca=(); [ -n "$UP_PID" ] && ca=(--ca "$WORK/data/tls/ca.pem")
log "classifying $HERE/images through $ENDPOINT (signed)"
timed "classify 5 images" "$PY" "$HERE/client.py" "$ENDPOINT" "$HERE/images" "${ca[@]}"
log "scaling to 2 replicas"
timed "scale to 2 + wait ready" "$ARK" service scale "$NAME" 2 --wait
timed "  (until get says 2 ready)" wait_ready 2
log "sending 40 requests"
timed "40 requests" "$PY" "$HERE/client.py" "$ENDPOINT" "$HERE/images" "${ca[@]}" --count 40 \
  --request-ids "$WORK/ids.txt" >/dev/null
log "requests served per instance (request log)"
by_replica "$WORK/ids.txt"
printf '\ntimings:\n%s' "$TIMINGS"
echo "note: the demo weights are untrained; the labels above are arbitrary (see README.md)."
