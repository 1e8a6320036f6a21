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
boot_mib=256

need_packages mmdebstrap qemu-user-static binfmt-support dosfstools mtools fdisk e2fsprogs \
  bmap-tools
arm64_binfmt || { echo "image: arm64 programs cannot run here (no binfmt_misc)" >&2; exit 1; }
bash scripts/build-deb.sh
deb=$(ls -t target/deb/roombox_*_arm64.deb | head -n1)

work=$(mktemp -d /var/tmp/roombox-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
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
mmdebstrap --quiet --arch=arm64 --variant=minbase --components=main,non-free-firmware \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --customize-hook='copy-in image/rootfs/etc image/rootfs/usr /' \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook='chroot "$1" apt-get install -y -q --no-install-recommends /tmp/roombox_*.deb
    rm "$1"/tmp/roombox_*.deb' \
  --customize-hook='bash image/customize.sh "$1"' \
  bookworm "$root" "$(debian_mirror)"
echo "image: root filesystem in $((SECONDS - start)) s, $(du -sm "$root" | cut -f1) MiB"

# --- filesystems and partitions, all in plain files -------------------------------------------
start=$SECONDS
mkdir "$work/boot"
mv "$root"/boot/firmware/* "$work/boot/"
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.img" $((boot_mib * 1024)) >/dev/null
mcopy -s -i "$work/boot.img" "$work"/boot/* ::
# The root with a quarter free and 256 MiB spare; the first boot grows it to the card.
root_mib=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 256 ))
mkfs.ext4 -q -L RASPIROOT -d "$root" "$work/root.img" "${root_mib}M"

img=$out/roombox-rpi-arm64.img
rm -f "$img" "$img.bmap"
truncate -s $(( (1 + boot_mib + root_mib) * 1024 * 1024 )) "$img"
sfdisk --quiet "$img" <<PARTS
label: dos
start=1MiB, size=${boot_mib}MiB, type=c, bootable
start=$((1 + boot_mib))MiB, type=83
PARTS
dd if="$work/boot.img" of="$img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none
bmaptool -q create -o "$img.bmap" "$img"
echo "image: $img ($(( (1 + boot_mib + root_mib) )) MiB, $(du -m "$img" | cut -f1) MiB used)" \
  "partitioned in $((SECONDS - start)) s"
