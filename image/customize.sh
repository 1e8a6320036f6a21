#!/usr/bin/env bash
# The image's settings, applied to the root filesystem in $1 after the packages are installed
# (called by image/build.sh from mmdebstrap's customize hook; runs on this machine, the
# commands inside the root under qemu-user).
set -euo pipefail
root=$1
in_root() { chroot "$root" "$@"; }

# A placeholder name until the first boot picks roombox-XXXX.
echo roombox >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\troombox\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
  >"$root/etc/hosts"

# Debian's kernel hook fills the boot partition (/boot/firmware): kernel, initrd, device trees,
# config.txt and cmdline.txt. The root is named by its label, as in /etc/fstab.
# CMA=0 leaves cma= off the command line: the hook only knows it must for a Pi 4 when it runs
# on one (cma=64M can keep a Pi 4 from booting), and here it runs on the build machine.
sed -i -e 's/^#\?ROOTPART=.*/ROOTPART=LABEL=RASPIROOT/' -e 's/^#\?CMA=.*/CMA=0/' \
  -e 's/^#\?CONSOLES=.*/CONSOLES="ttyS1,115200 tty0"/' "$root/etc/default/raspi-firmware"
board=/usr/share/roombox/board
# The board's config.txt lines ($board) are not added: they load Raspberry
# Pi kernel overlays (tc358743, vc4-kms-v3d) that Debian's kernel and firmware do not ship
# (image/README.md, "Which Pi").
in_root env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
# The room's USB speakerphone as ALSA's default device (board/README.md), when the package
# carries the board files.
if [ -f "$root$board/asound.conf" ]; then
  cp "$root$board/asound.conf" "$root/etc/asound.conf"
fi

in_root systemctl enable systemd-networkd systemd-resolved roombox-firstboot \
  roombox-ssh-keys roombox-mdns-alias >/dev/null
# SSH is installed but off (image/README.md: how to turn it on).
in_root systemctl disable ssh.service >/dev/null 2>&1 || true
in_root systemctl is-enabled roombox.service >/dev/null

# Nothing that must differ between boxes: systemd makes a machine-id at boot when the file is
# empty (not "first boot", so no presets re-enable ssh); the first boot makes SSH host keys.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
ln -sf /etc/machine-id "$root/var/lib/dbus/machine-id"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
