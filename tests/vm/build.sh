#!/usr/bin/env bash
# Builds what tests/vm/run.sh boots: Debian bookworm's own 6.1 kernel and an initramfs holding
# busybox and the kernel modules of the virtual devices the box is tested against:
#   vivid     a V4L2 capture driver with an HDMI input, DV timings and a no-signal control
#   snd-aloop an ALSA loopback card (what is played on one end is captured on the other)
#   vicodec   a stateful V4L2 memory-to-memory codec (FWHT); Debian's config leaves it out, so it
#             is built here from Debian's kernel source against Debian's kernel headers
#   bochs     the KMS driver of qemu's standard VGA: a display with a connector and page flips
# plus virtio + 9p, through which the guest sees this machine's root filesystem (read-only)
# and the working tree (read-write). Output goes to target/vm; quick when it is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/vm
[ "$out/initrd.gz" -nt tests/vm/init ] && [ "$out/initrd.gz" -nt tests/vm/build.sh ] &&
  [ -e "$out/vmlinuz" ] && exit 0

export DEBIAN_FRONTEND=noninteractive
bash scripts/deps/install.sh vm

# The newest 6.1 kernel ABI the mirror has; its unsigned image, headers and source.
abi=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' |
  awk '{print $1}' | sed -E 's/^linux-image-(6\.1\.0-[0-9]+)-amd64-unsigned$/\1/' | sort -V | tail -n1)
[ -n "$abi" ] || { echo "vm: no linux-image-6.1.0-*-amd64-unsigned in the apt sources" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The headers are installed (their Makefiles name /usr/src); the image and source are only
# extracted here.
[ -e "/usr/src/linux-headers-$abi-amd64/Makefile" ] ||
  apt-get install -y -qq --no-install-recommends "linux-headers-$abi-amd64" >/dev/null
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root \
  "linux-image-$abi-amd64-unsigned" linux-source-6.1 busybox-static >/dev/null)
for deb in "$work"/*.deb; do
  case "$deb" in *linux-source*) ;; *) dpkg-deb -x "$deb" "$work/root" ;; esac
done
kver="$abi-amd64"
moddir="$work/root/lib/modules/$kver"

# vicodec and the mem2mem framework it needs (Debian builds neither for amd64), out of tree,
# from the exact kernel's source.
dpkg-deb -x "$work"/linux-source-6.1_*.deb "$work/src"
tar -xaf "$work"/src/usr/src/linux-source-6.1.tar.xz -C "$work/src" \
  --wildcards '*/drivers/media/test-drivers/vicodec/*' '*/drivers/media/v4l2-core/v4l2-mem2mem.c'
ksrc="$work/src/linux-source-6.1"
vicodec="$ksrc/drivers/media/test-drivers/vicodec"
cp "$ksrc/drivers/media/v4l2-core/v4l2-mem2mem.c" "$vicodec/"
echo 'obj-m += v4l2-mem2mem.o' >>"$vicodec/Makefile"
make -s -C "/usr/src/linux-headers-$kver" M="$vicodec" CC=gcc-12 \
  CONFIG_VIDEO_VICODEC=m modules >/dev/null
mkdir -p "$moddir/extra"
cp "$vicodec/vicodec.ko" "$vicodec/v4l2-mem2mem.ko" "$moddir/extra/"

# The initramfs: busybox, the modules we load and what they depend on, and init.
ir="$work/initrd"
mkdir -p "$ir"/{bin,dev,proc,sys,mnt,tmp} "$ir/lib/modules/$kver"
cp "$work/root/bin/busybox" "$ir/bin/"
depmod -b "$work/root" "$kver"
wanted="vivid snd-aloop vicodec bochs virtio_pci 9pnet_virtio 9p"
for m in $wanted; do
  modprobe -d "$work/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$moddir"/}
  mkdir -p "$ir/lib/modules/$kver/$(dirname "$rel")"
  cp "$ko" "$ir/lib/modules/$kver/$rel"
done
cp "$moddir"/modules.order "$moddir"/modules.builtin* "$ir/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$ir" "$kver"
cp tests/vm/init "$ir/init"
chmod +x "$ir/init"
mkdir -p "$out"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initrd.gz"
cp "$work/root/boot/vmlinuz-$kver" "$out/vmlinuz"
echo "vm: kernel $kver, initramfs $(du -h "$out/initrd.gz" | cut -f1) in $out"
