#!/usr/bin/env bash
# Ensure a Docker Engine is installed and running on this (Debian) host.
# Idempotent: installs Debian's docker.io only when `dockerd` is missing, starts
# dockerd in the background only when `docker info` fails, then waits until the
# daemon answers. Used by .ci/run; safe to run by hand (needs root).
set -euo pipefail

log() { echo "[docker.sh] $*" >&2; }
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
LOG=${DOCKERD_LOG:-/var/log/arkserve-dockerd.log}
WAIT_S=${DOCKERD_WAIT_S:-60}

if docker info >/dev/null 2>&1; then
  log "dockerd already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends docker.io busybox-static iptables ca-certificates >/dev/null
fi
command -v busybox >/dev/null 2>&1 || {
  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq busybox-static >/dev/null
}

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd (log: $LOG)"
  # containerd is started by dockerd itself when not running as a service; a pid file left by
  # a daemon that died would stop the new one from starting.
  rm -f /var/run/docker.pid
  setsid nohup dockerd --host "unix://$SOCK" >>"$LOG" 2>&1 &
fi

for _ in $(seq 1 "$((WAIT_S * 4))"); do
  if docker info >/dev/null 2>&1; then
    log "dockerd is up"
    exit 0
  fi
  sleep 0.25
done
log "dockerd did not come up within ${WAIT_S}s; last log lines:"
tail -n 30 "$LOG" >&2 || true
exit 1
