# Shared by tests/package/run.sh and image/build.sh (sourced, not run): an arm64 Debian root
# filesystem made on this (amd64) machine, its programs run by qemu-user through binfmt_misc.

# The Debian mirror of this machine's own apt sources (never a hard-coded one).
debian_mirror() {
  local uri
  uri=$( (grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
          grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}') |
        grep -v security | head -n1 || true)
  [ -n "$uri" ] || { echo "no Debian mirror in the apt sources" >&2; return 1; }
  echo "$uri"
}

# Makes sure the kernel hands aarch64 ELF files to qemu-aarch64-static: mounts binfmt_misc if
# it is not (containers and minimal VMs often leave it unmounted) and enables the handler that
# qemu-user-static registers with the F flag (the interpreter is opened once, so it works inside
# a chroot without copying it in). Returns 1 if the kernel will not do it.
arm64_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [ -e "$dir/status" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || return 1
  [ -e "$dir/qemu-aarch64" ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -qx enabled "$dir/qemu-aarch64" 2>/dev/null
}

# bootstrap_arm64 DIR VARIANT INCLUDE [MMDEBSTRAP OPTIONS]: Debian bookworm arm64 in DIR
# (mmdebstrap: apt on this machine downloads and resolves, one dpkg run under qemu; several
# times quicker than debootstrap's package-by-package second stage). VARIANT is essential (no
# apt inside) or minbase; INCLUDE is comma-separated, or the path of one .deb file.
bootstrap_arm64() {
  local dir=$1 variant=$2 include=$3 mirror
  shift 3
  mirror=$(debian_mirror)
  # The hook makes an included .deb file visible inside the root while dpkg installs it.
  mmdebstrap --quiet --arch=arm64 --variant="$variant" ${include:+--include="$include"} \
    --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount "$@" bookworm "$dir" "$mirror"
}
