#!/usr/bin/env bash
# Builds the container images `e2e/up --pods` imports into its containerd, as OCI archives in
# directory $1 (no registry is reachable here, so nothing can be pulled):
#   pause.tar    $PAUSE_IMAGE: e2e/node/pause.c, compiled statically (gcc -static), FROM scratch;
#                containerd's sandbox image (the process that holds each pod's namespaces)
#   busybox.tar  $BUSYBOX_IMAGE: Debian's busybox-static binary with a link per applet (sh, wget,
#                nslookup, nc, httpd, ...), FROM scratch; for test pods
# Run by e2e/build (as build_images); needs gcc with a static libc, apt-get and buildah. Buildah's
# storage is a temporary directory (vfs driver, chroot isolation), removed afterwards.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
buildah() { command buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }

# pause
gcc -static -Os -s -o "$work/pause" "$E2E_DIR/node/pause.c"
c=$(buildah from scratch)
buildah copy "$c" "$work/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --os linux --arch amd64 \
  --label org.opencontainers.image.title=kuberay-e2e-pause "$c"
buildah commit -q "$c" "oci-archive:$out/pause.tar:$PAUSE_IMAGE" >/dev/null
buildah rm "$c" >/dev/null

# busybox: the .deb's binary, not an installed one (nothing is installed on the host for it).
(
  cd "$work"
  apt-get -o APT::Sandbox::User=root download busybox-static >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get -o APT::Sandbox::User=root download busybox-static >/dev/null; }
)
dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
root=$work/busybox-root
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
cp "$work/deb/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
c=$(buildah from scratch)
buildah copy "$c" "$root" / >/dev/null
buildah config --cmd '["/bin/sh"]' --env PATH=/bin --os linux --arch amd64 \
  --label org.opencontainers.image.title=kuberay-e2e-busybox \
  --label "org.opencontainers.image.version=$(dpkg-deb -f "$work"/busybox-static_*.deb Version)" "$c"
buildah commit -q "$c" "oci-archive:$out/busybox.tar:$BUSYBOX_IMAGE" >/dev/null
buildah rm "$c" >/dev/null
