#!/usr/bin/env bash
# assemble.sh ROOT IMAGE: writes the root filesystem directory ROOT (its /boot/firmware
# becomes the FAT boot partition) into the SD-card image file IMAGE and IMAGE.bmap. Plain files
# only, no loop devices or mounts: mkfs.ext4 -d, mkfs.vfat -C and mcopy, sfdisk on the file,
# dd into place. Called by image/build.sh; ROOT is moved from, so pass a throwaway copy.
set -euo pipefail
root=$1 img=$2
boot_mib=256
work=$(mktemp -d /var/tmp/roombox-assemble.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$SECONDS

mkdir "$work/boot"
mv "$root"/boot/firmware/* "$work/boot/"
mkfs.vfat -F 32 -n RASPIFIRM -C "$work/boot.img" $((boot_mib * 1024)) >/dev/null
mcopy -s -i "$work/boot.img" "$work"/boot/* ::
# The root with a quarter free and 256 MiB spare; the first boot grows it to the card.
root_mib=$(( $(du -sm "$root" | cut -f1) * 5 / 4 + 256 ))
mkfs.ext4 -q -L RASPIROOT -d "$root" "$work/root.img" "${root_mib}M" >/dev/null

mkdir -p "$(dirname "$img")"
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
echo "image: $img, $((1 + boot_mib + root_mib)) MiB ($(du -m "$img" | cut -f1) MiB in use)," \
  "assembled in $((SECONDS - start)) s"
