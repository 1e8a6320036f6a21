#!/usr/bin/env bash
# The dependency list on a machine that has nothing: a minimal Debian bookworm root (mmdebstrap
# minbase from this machine's own apt sources, amd64 like the host), scripts/deps/install.sh
# run inside it for every stage CI runs, then scripts/deps/check.sh's probes inside it. A
# package this build machine happens to have but the list forgot (as arch-test once was: a
# Recommends of mmdebstrap that a fresh machine lacks) fails here.
# Rust is not installed in the root: the probes need none (the cross stage uses Debian's rustc).
# Run as root on Debian bookworm. Nothing is cached between runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

# A private mount namespace: the root's mounts go away with this process, however it ends.
if [ -z "${ROOMBOX_DEPS_NS:-}" ]; then
  ROOMBOX_DEPS_NS=1 exec unshare --mount --propagation private bash tests/deps/fresh-root.sh "$@"
fi

bash scripts/deps/install.sh package # mmdebstrap here
start=$SECONDS
# Every stage's packages make a root of several GB (the run prints its size): say so plainly
# rather than let dpkg fail half way through on a full disk.
need_kb=$((6 * 1024 * 1024))
free_kb=$(df --output=avail -k /var/tmp | tail -n 1)
if [ "$free_kb" -lt "$need_kb" ]; then
  echo "tests/deps: only $((free_kb / 1024)) MB free in /var/tmp; the fresh root needs 6 GB" >&2
  exit 1
fi
root=$(mktemp -d /var/tmp/roombox-deps.XXXXXX)
trap 'umount -R "$root/src" "$root/dev" "$root/sys" "$root/proc" 2>/dev/null || true
      rm -rf --one-file-system "$root"' EXIT

# This machine's apt sources, as they are (deb822 files if it has them, else sources.list).
sources() {
  local f found=0
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    cat "$f"; echo; found=1
  done
  [ "$found" = 1 ] || grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
}
sources | mmdebstrap --quiet --variant=minbase bookworm "$root" -
echo "tests/deps: minimal bookworm root in $((SECONDS - start)) s ($(chroot "$root" dpkg-query -W | wc -l) packages)"

mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mkdir -p "$root/src"
mount --bind "$PWD" "$root/src"
mount -o remount,bind,ro "$root/src"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts inside the root (coturn's and udev's maintainer scripts would try): what
# this machine already runs, on its ports or devices, must not fail a package's postinst.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

t=$SECONDS
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root bash /src/scripts/deps/install.sh
echo "tests/deps: every CI stage's packages installed in $((SECONDS - t)) s ($(chroot "$root" dpkg-query -W | wc -l) packages, $(du -sxm --exclude="$root/src" "$root" | cut -f1) MB)"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"; }
in_root bash /src/scripts/deps/check.sh
# And the probes notice what they are for: without arch-test (which mmdebstrap only
# Recommends) the package stage's probe fails.
in_root apt-get remove -y -qq arch-test >/dev/null
if in_root bash /src/scripts/deps/check.sh package >/dev/null 2>&1; then
  echo "tests/deps: FAIL: the probes did not notice arch-test missing" >&2
  exit 1
fi
echo "tests/deps: ok: without arch-test the package stage's probe fails"
echo "tests/deps: ok: a fresh bookworm root gets every CI stage's tools from scripts/deps ($((SECONDS - start)) s)"
