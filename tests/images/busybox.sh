#!/bin/sh
# Build the test image arkserve-test/busybox:1 from the host's static busybox (Debian
# busybox-static) with `docker import`: no registry needed, takes about a second.
# Does nothing when the image already exists. Usage: busybox.sh [IMAGE]
set -eu
IMAGE=${1:-arkserve-test/busybox:1}
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "busybox.sh: need a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/www" "$root/etc" "$root/root"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
echo "built $IMAGE" >&2
