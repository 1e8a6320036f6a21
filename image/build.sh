#!/usr/bin/env bash
# Builds a bootable Raspberry Pi 4 SD-card image (Debian bookworm arm64, Debian's own kernel
# and Pi firmware) with the roombox package installed and enabled:
#
#   bash image/build.sh [OUT_DIR]      # default target/image
#
# OUT_DIR/roombox-rpi-arm64.img (MBR: FAT32 "RASPIFIRM" boot, ext4 "RASPIROOT" root) and its
# .bmap. No loop devices and no mounts: the root filesystem is made in a directory (mmdebstrap,
# its programs run by qemu-user), then written into filesystem images by mkfs.ext4 -d and
# mtools, and those are placed into the partitioned image file. Flashing: image/README.md.
# Debian bookworm, as root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/arm64-rootfs.sh
out=${1:-target/image}

# A private mount namespace: whatever mmdebstrap mounts goes away with it, even when stopped.
if [ -z "${ROOMBOX_IMAGE_NS:-}" ]; then
  ROOMBOX_IMAGE_NS=1 exec unshare --mount --propagation private bash image/build.sh "$@"
fi

bash scripts/deps/install.sh image
arm64_binfmt || { echo "image: arm64 programs cannot run here (no binfmt_misc)" >&2; exit 1; }
bash scripts/build-deb.sh
deb=$(ls -t target/deb/roombox_*_arm64.deb | head -n1)

root=$(mktemp -d /var/tmp/roombox-image.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
mkdir -p "$out"

packages=(
  systemd-sysv udev dbus kmod systemd-resolved systemd-timesyncd  # boot, network, clock (no RTC)
  linux-image-arm64 raspi-firmware firmware-brcm80211             # Debian's Pi support
  avahi-daemon avahi-utils                                        # roombox-XXXX.local, roombox.local
  openssh-server                                                  # installed, off by default
  cloud-guest-utils e2fsprogs dosfstools                          # grow the root on first boot
  ca-certificates iproute2 less nano alsa-utils v4l-utils         # for whoever logs in
)
start=$SECONDS
# The package goes in with the rest (apt resolves its Depends); then the image's own files and
# settings (image/rootfs/, image/customize.sh).
bootstrap_arm64 "$root" minbase "$(IFS=,; echo "${packages[*]}")" \
  --components=main,non-free-firmware --include="$PWD/$deb" \
  --customize-hook='sync-in image/rootfs /' \
  --customize-hook='bash image/customize.sh "$1"'
echo "image: root filesystem in $((SECONDS - start)) s, $(du -sm "$root" | cut -f1) MiB"

bash image/assemble.sh "$root" "$out/roombox-rpi-arm64.img"
