#!/usr/bin/env bash
# Build arkserve's own image (the root Dockerfile) with no public image registry and no network in the build:
#   1. the base arkserve/base:bookworm: debootstrap --variant=minbase bookworm (python3, python3-venv,
#      docker-registry, ca-certificates) -> tar -> docker import   (skipped when it exists; --force redoes it)
#   2. wheels of arkserve[kubernetes] and its dependencies on this host: pip wheel ".[kubernetes]" -w dist/wheels (from your PyPI or mirror)
#   3. docker build -t ${ARKSERVE_IMAGE:-arkserve/arkserve:<version>} .   (installs only from dist/wheels)
# Debian mirror: this machine's (as examples/flowers/build_base.sh finds it) or DEBIAN_MIRROR. Then push the image
# to a registry your cluster pulls from and name it in deploy/kubernetes (docs/kubernetes.md, "Install").
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE=${ARKSERVE_IMAGE:-arkserve/arkserve:$VERSION}
BASE=${ARKSERVE_BASE_IMAGE:-arkserve/base:bookworm}
CACHE=${ARKSERVE_CACHE:-/var/cache/arkserve}
PYTHON=${PYTHON:-python3}
force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $arg (use --force)" >&2; exit 2 ;;
  esac
done
log() { echo "[arkserve image] $*" >&2; }

if [ "$force" = 1 ] || ! docker image inspect "$BASE" >/dev/null 2>&1; then
  mirror=${DEBIAN_MIRROR:-$(bash examples/flowers/build_base.sh --print-mirror)}
  mkdir -p "$CACHE/debs"
  rootfs=$(mktemp -d "$CACHE/arkserve-rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,docker-registry,ca-certificates \
    --cache-dir="$CACHE/debs" bookworm "$rootfs" "$mirror" >"$CACHE/arkserve-debootstrap.log" 2>&1 \
    || { tail -n 30 "$CACHE/arkserve-debootstrap.log" >&2; exit 1; }
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -C "$rootfs" -c . \
    | docker import --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
  log "imported $BASE"
fi
rm -rf dist/wheels
log "pip wheel .[kubernetes] -w dist/wheels"
"$PYTHON" -m pip wheel -q --disable-pip-version-check -w dist/wheels ".[kubernetes]" 2>&1 | grep -v "^WARNING: Location" || true
ls dist/wheels/arkserve-*.whl >/dev/null
docker build -q --build-arg "BASE=$BASE" -t "$IMAGE" . >/dev/null
log "built $IMAGE"
