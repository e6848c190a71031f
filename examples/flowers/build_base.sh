#!/usr/bin/env bash
# Build the base image arkserve/flowers-base:bookworm from Debian packages, with no public image registry:
#   debootstrap --variant=minbase bookworm (torch, torchvision, flask, pil) -> tar -> docker import.
# Skips when the image exists (--force re-imports it; --refresh also re-runs debootstrap);
# --print-mirror prints the Debian mirror it would use (from $APT_ETC, default /etc/apt) and exits.
# The rootfs tarball and the downloaded .debs are cached under ${ARKSERVE_CACHE:-/var/cache/arkserve},
# so a rebuild is only an import. The mirror is this machine's configured Debian mirror (override: DEBIAN_MIRROR).
set -euo pipefail

IMAGE=${FLOWERS_BASE_IMAGE:-arkserve/flowers-base:bookworm}
SUITE=bookworm
PACKAGES=python3-torch,python3-torchvision,python3-flask,python3-pil
CACHE=${ARKSERVE_CACHE:-/var/cache/arkserve}
TARBALL=$CACHE/flowers-base-$SUITE.tar
APT_ETC=${APT_ETC:-/etc/apt}
force=0 refresh=0 print_mirror=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --refresh) force=1 refresh=1 ;;
    --print-mirror) print_mirror=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "build_base.sh: unknown argument $arg (use --force, --refresh or --print-mirror)" >&2; exit 2 ;;
  esac
done
log() { echo "[build_base] $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

debian_mirror() {
  # First URI serving the plain suite (not -security/-updates), from one-line or deb822 sources.
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f
  for f in "$APT_ETC/sources.list" "$APT_ETC"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit } }' "$f"
  done | head -n1 | grep . && return
  for f in "$APT_ETC"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; ok = 0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uri = u[1] }
          if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == s) ok = 1 }
        }
        if (ok && uri != "") { print uri; exit } }' "$f"
  done | head -n1 | grep . && return
  echo "build_base.sh: no Debian mirror for $SUITE in $APT_ETC/sources.list*; set DEBIAN_MIRROR" >&2
  return 1
}

if [ "$print_mirror" = 1 ]; then debian_mirror; exit; fi
if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE exists; reusing it (--force to rebuild)"
  exit 0
fi

t_start=$(now)
mkdir -p "$CACHE/debs"
if [ "$refresh" = 1 ] || [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get -o DPkg::Lock::Timeout=600 install -y -q debootstrap >/dev/null; }
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap --variant=minbase $SUITE from $mirror (+ $PACKAGES)"
  t0=$(now)
  debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debs" "$SUITE" "$rootfs" "$mirror" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  log "debootstrap took $(secs "$t0" "$(now)")s"
  t0=$(now)
  tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  log "rootfs tarball $TARBALL ($(du -h "$TARBALL" | cut -f1)) took $(secs "$t0" "$(now)")s"
else
  log "reusing cached rootfs $TARBALL (--refresh to re-run debootstrap)"
fi
t0=$(now)
docker import --change 'ENV PYTHONUNBUFFERED=1' --change 'ENV LANG=C.UTF-8' "$TARBALL" "$IMAGE" >/dev/null
log "docker import took $(secs "$t0" "$(now)")s"
log "built $IMAGE in $(secs "$t_start" "$(now)")s total"
