#!/usr/bin/env bash
# Checks the files in board/ that can be checked on a build machine: the EDIDs (own decoder
# and generator round trip in check_edid.py, then edid-decode's conformity check), the shell
# scripts' syntax, the udev rules with udev's own parser and the EDID unit with
# systemd-analyze. The device side (loading the EDID,
# asound.conf) runs in the VM: tests/vm/cases/60-board-files.sh.
# Usage: bash tests/board/run.sh   (as root on Debian, to install edid-decode if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/deps/install.sh board

python3 tests/board/check_edid.py
for f in board/edid/*.txt; do
  edid-decode --check "$f" >/dev/null || { edid-decode --check "$f" | tail -20; exit 1; }
  echo "edid-decode --check $f: PASS"
done

sh -n board/roombox-edid

# udev parses the rules (reporting "file:line Invalid key ..." for a bad one) when it runs
# `udevadm test` on any device; in a private mount namespace /etc/udev/rules.d holds only ours.
rules=$(mktemp -d)
cp board/99-roombox.rules "$rules/"
out=$(unshare -m sh -c "mount --bind '$rules' /etc/udev/rules.d &&
  udevadm test --action=add /sys/class/net/lo 2>&1" | grep '99-roombox' |
  grep -v '^Reading rules file' || true)
rm -rf "$rules"
[ -z "$out" ] || { echo "udev on board/99-roombox.rules:" >&2; echo "$out" >&2; exit 1; }
echo "udev parses board/99-roombox.rules: ok"

# The unit, with its ExecStart pointed at the script in the tree (verify wants it to exist).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=/usr/lib/roombox/|ExecStart=$PWD/board/|" board/roombox-edid.service \
  >"$tmp/roombox-edid.service"
out=$(systemd-analyze verify --man=no "$tmp/roombox-edid.service" 2>&1) || true
[ -z "$out" ] || { echo "systemd-analyze verify roombox-edid.service:" >&2; echo "$out" >&2; exit 1; }
echo "verify roombox-edid.service: ok"
