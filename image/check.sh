#!/usr/bin/env bash
# Checks an SD-card image from image/build.sh without mounting it (mtools reads the FAT
# partition in place, debugfs the ext4 one): the partition table, the boot files the Pi 4
# firmware needs, and the root filesystem's first-boot setup, package and services.
#   bash image/check.sh target/image/roombox-rpi-arm64.img
set -euo pipefail
img=$1
source "$(dirname "$0")/../scripts/lib/arm64-rootfs.sh"
bash "$(dirname "$0")/../scripts/deps/install.sh" image
fail() { echo "image/check: FAIL: $*" >&2; exit 1; }
pass() { echo "image/check: ok: $*"; }

table=$(sfdisk --json "$img")
[ "$(jq '.partitiontable.partitions | length' <<<"$table")" = 2 ] || fail "not two partitions"
read -r boot_start boot_type boot_flag <<<"$(jq -r '.partitiontable.partitions[0] |
  "\(.start) \(.type) \(.bootable // false)"' <<<"$table")"
read -r root_start root_size root_type <<<"$(jq -r '.partitiontable.partitions[1] |
  "\(.start) \(.size) \(.type)"' <<<"$table")"
[ "$boot_type $boot_flag $root_type" = "c true 83" ] || fail "partition types: $table"
pass "MBR: FAT32 boot (bootable) at sector $boot_start, Linux root at sector $root_start"

# --- boot partition ---------------------------------------------------------------------------
fat="$img@@$((boot_start * 512))"
[ "$(mlabel -s -i "$fat" :: | sed 's/.*is \(.*\)/\1/' | tr -d ' ')" = RASPIFIRM ] ||
  fail "boot partition label"
files=$(mdir -b -i "$fat" :: | sed 's|^::/||')
for f in config.txt cmdline.txt start4.elf fixup4.dat bcm2711-rpi-4-b.dtb; do
  grep -qx "$f" <<<"$files" || fail "boot partition has no $f"
done
kernel=$(grep -x 'vmlinuz-.*' <<<"$files") || fail "no kernel on the boot partition"
grep -qx "initrd.img-${kernel#vmlinuz-}" <<<"$files" || fail "no initrd for $kernel"
config=$(mtype -i "$fat" ::config.txt)
grep -qx 'arm_64bit=1' <<<"$config" && grep -qx "kernel=$kernel" <<<"$config" ||
  fail "config.txt does not boot $kernel in 64-bit mode"
cmdline=$(mtype -i "$fat" ::cmdline.txt)
grep -q 'root=LABEL=RASPIROOT ' <<<"$cmdline" || fail "cmdline.txt: no root=LABEL=RASPIROOT"
! grep -q 'cma=' <<<"$cmdline" || fail "cmdline.txt sets cma= (a Pi 4 may not boot)"
pass "boot partition: firmware, $kernel with its initrd, Pi 4 device tree, config.txt, cmdline.txt"

# --- root partition ---------------------------------------------------------------------------
ext4=$(mktemp /var/tmp/roombox-root.XXXXXX)
trap 'rm -f "$ext4"' EXIT
dd if="$img" of="$ext4" bs=512 skip="$root_start" count="$root_size" conv=sparse status=none
fsck=$(e2fsck -fn "$ext4" 2>&1) || fail "the root filesystem is not clean: $fsck"
[ "$(e2label "$ext4")" = RASPIROOT ] || fail "root partition label"
fs() { debugfs -R "$1" "$ext4" 2>/dev/null; }
exists() { fs "stat $1" | grep -q '^Inode:'; }
link_of() { fs "stat $1" | sed -n 's/^Fast link dest: "\(.*\)"/\1/p'; }
[ "$(fs 'stat /usr/bin/roombox' | sed -n 's/.*Mode: *\([0-7]*\).*/\1/p')" = 0755 ] ||
  fail "/usr/bin/roombox"
exists "/lib/modules/${kernel#vmlinuz-}/modules.dep" || fail "no modules for $kernel"
[ "$(link_of /etc/systemd/system/multi-user.target.wants/roombox.service)" = \
  /lib/systemd/system/roombox.service ] || fail "roombox.service is not enabled"
for unit in sysinit.target.wants/roombox-firstboot multi-user.target.wants/roombox-ssh-keys \
            multi-user.target.wants/roombox-mdns-alias multi-user.target.wants/avahi-daemon \
            multi-user.target.wants/systemd-networkd; do
  exists "/etc/systemd/system/$unit.service" || fail "$unit.service is not enabled"
done
exists /usr/sbin/sshd || fail "no sshd"
! exists /etc/systemd/system/multi-user.target.wants/ssh.service || fail "ssh is enabled"
! exists /etc/systemd/system/sshd.service || fail "ssh is enabled (sshd.service alias)"
pass "roombox, first-boot, mDNS and network units enabled; sshd installed and disabled"

[ "$(fs 'stat /etc/machine-id' | sed -n 's/.*[[:space:]]Size: \([0-9]*\).*/\1/p' | head -n1)" = 0 ] ||
  fail "/etc/machine-id is not empty"
! fs 'ls -p /etc/ssh' | grep -q ssh_host_ || fail "the image carries SSH host keys"
groups=$(fs 'cat /etc/group')
for g in video audio render; do
  grep -q "^$g:.*[:,]roombox\(,\|$\)" <<<"$groups" || fail "roombox is not in $g"
done
grep -q '^LABEL=RASPIFIRM */boot/firmware ' <(fs 'cat /etc/fstab') || fail "fstab"
pass "no machine-id or SSH host keys baked in; roombox in video, audio, render; fstab by label"
