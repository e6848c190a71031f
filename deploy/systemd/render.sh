#!/bin/sh
# Render arkserve.service.in: render.sh --user USER --data-dir DIR --arkserve PATH [--up-args "ARGS"]
set -eu
user=$(id -un); data_dir=/var/lib/arkserve; arkserve=$(command -v arkserve || echo /usr/local/bin/arkserve); up_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --arkserve) arkserve=$2; shift 2 ;;
    --up-args) up_args=$2; shift 2 ;;
    *) echo "usage: $0 [--user USER] [--data-dir DIR] [--arkserve PATH] [--up-args ARGS]" >&2; exit 2 ;;
  esac
done
case "$arkserve" in /*) ;; *) echo "--arkserve must be an absolute path" >&2; exit 2 ;; esac
sed -e "s|@USER@|$user|g" -e "s|@DATA_DIR@|$data_dir|g" -e "s|@ARKSERVE@|$arkserve|g" \
    -e "s|@UP_ARGS@|$up_args|g" -e 's| *$||' "$(dirname "$0")/arkserve.service.in"
