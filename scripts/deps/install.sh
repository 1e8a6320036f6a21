#!/usr/bin/env bash
# Installs the Debian packages of the given stages (scripts/deps/packages.txt) on Debian
# bookworm, as root, in one apt run; quick when everything is there.
#   bash scripts/deps/install.sh [STAGE...]     (no stage: every stage CI runs)
# Not root and something missing: says what to install and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive

# The stages scripts/test.sh runs, in its order.
ci_stages=(build test board vm cross package)
[ $# -gt 0 ] || set -- "${ci_stages[@]}"

known=$(awk '!/^#/ && NF {print $1}' "$here/packages.txt" | sort -u)
for stage in "$@"; do
  grep -qx "$stage" <<<"$known" || { echo "deps: no stage '$stage' in packages.txt" >&2; exit 2; }
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

missing=()
while read -r stage pkg alt _; do
  case " $* " in *" $stage "*) ;; *) continue ;; esac
  case "$alt" in cmd:*) command -v "${alt#cmd:}" >/dev/null && continue ;; esac
  installed "$pkg" && continue
  case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done < <(sed -e 's/#.*//' "$here/packages.txt" | awk 'NF')

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages for stage(s) $*: ${missing[*]}" >&2
  echo "deps: as root: bash scripts/deps/install.sh $*" >&2
  exit 1
fi
case " ${missing[*]} " in
  *:arm64*) dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64 ;;
esac
echo "deps: installing for $*: ${missing[*]}"
apt=(apt-get -o DPkg::Lock::Timeout=600)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt's chatter goes to a log, its end shown when apt fails (dpkg's reason is in it). One more
# try after a failure, with dpkg's unfinished work finished first: a mirror or disk hiccup on a
# shared machine should not fail a run, and the first failure is still shown.
apt_install() {
  "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
}
if ! apt_install >"$log" 2>&1; then
  echo "deps: apt failed; the end of its output:" >&2
  tail -n 60 "$log" >&2
  df -h / /var/tmp >&2 || true
  echo "deps: trying once more" >&2
  if ! { dpkg --configure -a && apt_install; } >"$log" 2>&1; then
    echo "deps: apt failed again; the end of its output:" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
fi
echo "deps: installed ${#missing[@]} package(s)"
