#!/usr/bin/env bash
# The Debian package, for arm64: builds two versions of it (scripts/build-deb.sh) and tests
# install, upgrade, remove and purge with dpkg in a fresh Debian bookworm arm64 root filesystem,
# every program in it (dpkg, the maintainer scripts, adduser, roombox) run by qemu-user.
# Run as root on Debian bookworm. Nothing is cached between runs.
#
# Not checkable here, because systemd does not run in a chroot: that the unit really starts,
# restarts after an upgrade and stops on removal. The maintainer scripts skip those steps when
# /run/systemd/system is absent, exactly as on any offline install (an image build); what is
# checked is everything they leave on disk (the enablement symlink, the mask, their state).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/arm64-rootfs.sh

# A private mount namespace: the chroot's /proc goes away with this process, however it ends.
if [ -z "${ROOMBOX_PKG_NS:-}" ]; then
  ROOMBOX_PKG_NS=1 exec unshare --mount --propagation private bash tests/package/run.sh "$@"
fi

bash scripts/deps/install.sh package
start=$SECONDS
bash scripts/build-deb.sh --fast --deb-revision 1
bash scripts/build-deb.sh --fast --deb-revision 2
out=target/deb
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
deb1=$out/roombox_${version}-1_arm64.deb
deb2=$out/roombox_${version}-2_arm64.deb

fail() { echo "tests/package: FAIL: $*" >&2; exit 1; }
pass() { echo "tests/package: ok: $*"; }

if ! arm64_binfmt; then
  # No binfmt_misc: no chroot can run arm64 programs. Run the packaged binary directly under
  # qemu-user with this machine's arm64 multiarch libraries, and say what was not tested.
  echo "tests/package: binfmt_misc unavailable: the chroot install tests are NOT run" >&2
  x=$(mktemp -d)
  dpkg-deb -x "$deb1" "$x"
  qemu-aarch64-static -L / "$x/usr/bin/roombox" --version
  rm -rf "$x"
  exit 1
fi

# What systemd would be asked to do, which the chroot cannot run (see the top): the package
# carries dh_installsystemd's steps (cargo-deb's copies); below, they are skipped.
ctl=$(mktemp -d)
dpkg-deb -e "$deb1" "$ctl/c"
grep -q 'deb-systemd-invoke $_dh_action roombox.service' "$ctl/c/postinst" &&
  grep -q '_dh_action=restart' "$ctl/c/postinst" &&
  grep -q 'deb-systemd-invoke stop roombox.service' "$ctl/c/prerm" ||
  fail "the package does not start/restart/stop the unit"
rm -rf "$ctl"
pass "maintainer scripts start (install), restart (upgrade), stop (remove) the unit under systemd"

root=$(mktemp -d /var/tmp/roombox-pkg.XXXXXX)
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf --one-file-system "$root"' EXIT
t=$SECONDS
# The install: apt (on this machine) resolves the package's dependencies from the mirror, as
# `apt install ./roombox_*.deb` would, and dpkg inside the root unpacks everything and runs
# the maintainer scripts, under qemu-user.
bootstrap_arm64 "$root" essential "$PWD/$deb1"
echo "tests/package: arm64 root filesystem with the package installed in $((SECONDS - t)) s"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
cp "$deb2" "$root/tmp/"

[ "$(in_root uname -m)" = aarch64 ] || fail "the chroot does not run aarch64 programs"
[ "$(in_root dpkg-query -W -f='${Version} ${db:Status-Abbrev}' roombox)" = "${version}-1 ii " ] ||
  fail "roombox ${version}-1 is not installed"

check_user() {
  local entry groups
  entry=$(in_root getent passwd roombox) || fail "no user roombox"
  IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
  [ "$uid" -lt 1000 ] || fail "roombox is not a system user (uid $uid)"
  [ "$home" = /var/lib/roombox ] && [ "$shell" = /usr/sbin/nologin ] ||
    fail "roombox: home $home, shell $shell"
  groups=$(in_root id -nG roombox | tr ' ' '\n' | sort | tr '\n' ' ')
  [ "$groups" = "audio render roombox video " ] || fail "roombox is in: $groups"
  echo "$uid"
}
uid=$(check_user)
pass "system user roombox (uid $uid) in groups audio render roombox video"

mode() { in_root stat -c '%a %U:%G' "$1"; }
expect_mode() { [ "$(mode "$1")" = "$2" ] || fail "$1: $(mode "$1"), expected $2"; }
expect_mode /usr/bin/roombox "755 root:root"
expect_mode /lib/systemd/system/roombox.service "644 root:root"
expect_mode /etc/roombox "2775 root:roombox"
expect_mode /etc/roombox/roombox.toml "644 root:root"
expect_mode /usr/share/doc/roombox/operations.md "644 root:root"
expect_mode /usr/lib/udev/rules.d/99-roombox.rules "644 root:root"
expect_mode /usr/lib/roombox/roombox-edid "755 root:root"
expect_mode /usr/lib/systemd/system/roombox-edid.service "644 root:root"
expect_mode /usr/share/roombox/edid/1080p30.txt "644 root:root"
expect_mode /usr/share/roombox/board/config-pi4.txt "644 root:root"
cmp -s "$root/lib/systemd/system/roombox.service" systemd/roombox.service ||
  fail "the installed unit differs from systemd/roombox.service"
cmp -s "$root/etc/roombox/roombox.toml" systemd/roombox.toml ||
  fail "the installed config differs from systemd/roombox.toml"
pass "binary, units, config, board files (udev rules, EDIDs, config.txt lines) and docs in place with their modes"

wants=/etc/systemd/system/multi-user.target.wants/roombox.service
target=$(readlink "$root$wants") || fail "the unit is not enabled (no $wants)"
[ "${target#/usr}" = /lib/systemd/system/roombox.service ] || fail "$wants -> $target"
pass "unit enabled: $wants -> $target"

in_root dpkg-query -W -f='${Conffiles}\n' roombox | grep -q '^ /etc/roombox/roombox.toml ' ||
  fail "/etc/roombox/roombox.toml is not a conffile"
pass "/etc/roombox/roombox.toml is a conffile"

# Depends names the package of every library the binary links (it is not computed by
# dpkg-shlibdeps, see Cargo.toml), and the binary runs with just those installed.
depends=$(dpkg-deb -f "$deb1" Depends)
depends_names=$(sed -e 's/ *([^)]*)//g' -e 's/, */\n/g' <<<"$depends")
for lib in $(readelf -d "$root/usr/bin/roombox" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  owner=$(in_root dpkg-query -S "*/$lib" | head -n1 | cut -d: -f1)
  grep -qxF "$owner" <<<"$depends_names" || fail "$lib comes from $owner, not in Depends"
done
pass "every NEEDED library's package is in Depends ($depends)"
# The signaling server is reached over wss:// with the system's root certificates.
grep -qxF ca-certificates <<<"$depends_names" || fail "ca-certificates is not in Depends"
[ -s "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle after installing the package"
pass "ca-certificates in Depends, the CA bundle installed with the package"

[ "$(in_root roombox --version)" = "roombox $version" ] || fail "roombox --version"
in_root roombox devices | grep -q '^Audio capture:' || fail "roombox devices"
in_root roombox devices --json | jq -e '.video and .audio_capture and .audio_playback' >/dev/null ||
  fail "roombox devices --json"
pass "roombox --version and roombox devices run (aarch64, under qemu-user)"

# --- upgrade keeps a changed conffile ---------------------------------------------------------
printf 'room = "board-room"\n' >>"$root/etc/roombox/roombox.toml"
in_root dpkg -i "/tmp/$(basename "$deb2")" >/dev/null
[ "$(in_root dpkg-query -W -f='${Version}' roombox)" = "${version}-2" ] || fail "upgrade"
tail -n1 "$root/etc/roombox/roombox.toml" | grep -qx 'room = "board-room"' ||
  fail "the upgrade lost the changed /etc/roombox/roombox.toml"
[ "$(check_user)" = "$uid" ] || fail "the upgrade changed the user"
[ -L "$root$wants" ] || fail "the upgrade disabled the unit"
pass "upgrade to ${version}-2 kept the changed conffile, the user and the enablement"

# --- remove: disabled (masked), conffile and user kept ----------------------------------------
in_root dpkg -r roombox >/dev/null
[ ! -e "$root/usr/bin/roombox" ] || fail "remove left /usr/bin/roombox"
[ "$(readlink "$root/etc/systemd/system/roombox.service")" = /dev/null ] ||
  fail "remove did not mask the unit"
[ -e "$root/etc/roombox/roombox.toml" ] || fail "remove deleted the conffile"
in_root getent passwd roombox >/dev/null || fail "remove deleted the user"
pass "remove: binary gone, unit masked, config and user kept for a reinstall"

# --- purge: user, config, state and unit state gone -------------------------------------------
mkdir -p "$root/var/lib/roombox" && touch "$root/var/lib/roombox/state"
in_root dpkg -P roombox >/dev/null
for p in /etc/roombox /var/lib/roombox "$wants" /etc/systemd/system/roombox.service \
         /var/lib/systemd/deb-systemd-helper-enabled/roombox.service.dsh-also; do
  [ ! -e "$root$p" ] && [ ! -L "$root$p" ] || fail "purge left $p"
done
! in_root getent passwd roombox >/dev/null || fail "purge left the user"
! in_root getent group roombox >/dev/null || fail "purge left the group"
pass "purge: user, group, /etc/roombox, /var/lib/roombox and the unit's state removed"

echo "tests/package: all passed in $((SECONDS - start)) s"
