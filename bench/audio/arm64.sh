#!/usr/bin/env bash
# The box's chain (stage-cost) built for aarch64 as scripts/cross-arm64.sh builds the box
# (Debian's rustc-web/cargo-web, gcc-aarch64-linux-gnu), run under qemu-user with a TCG plugin
# that counts the instructions executed inside the chain's calls: the aarch64 counterpart of
# the callgrind table. Instructions, not time: qemu's speed says nothing about a Pi's.
#   bash bench/audio/arm64.sh      prints a Markdown table (also target/arm64.md)
# Needs the `cross` stage (bash scripts/deps/install.sh cross) and qemu-user, whose dynamic
# qemu-aarch64 loads plugins (qemu-user-static cannot: it is static). Debian ships no compiled
# plugins, so the plugin (qemu/insn_region.c) is built here against qemu-plugin.h from Debian's
# qemu source package, fetched with apt-get source into target/ without touching the system's
# apt state (as scripts/fetch-uapi-headers.sh does for its headers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"
work=$here/target/arm64
mkdir -p "$work"
seconds=${SECONDS_OF_AUDIO:-25}

for cmd in /usr/bin/cargo aarch64-linux-gnu-gcc qemu-aarch64 gcc; do
  command -v "$cmd" >/dev/null || {
    echo "arm64.sh: MISSING $cmd (bash scripts/deps/install.sh cross; apt-get install qemu-user)" >&2
    exit 1
  }
done

# --- the plugin -------------------------------------------------------------------------------
source "$here/qemu/plugin.sh"

# --- the aarch64 build (environment: scripts/cross-env.sh, as scripts/cross-arm64.sh) --------
pushd "$root" >/dev/null
source scripts/cross-env.sh # sets triple and gnu
popd >/dev/null
# Only stage-cost: the C candidates (feature `candidates`) would need arm64 speexdsp/WebRTC 0.3.
/usr/bin/cargo build --locked --release --target "$triple" --target-dir target/aarch64-cross \
  --no-default-features --bin stage-cost 2>&1 | tail -n 2
bin=target/aarch64-cross/$triple/release/stage-cost

# --- the counts -------------------------------------------------------------------------------
{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1); qemu-aarch64 $qver (TCG, plugin" \
    "qemu/insn_region.c); $(/usr/bin/rustc --version) for $triple; $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Command: bash bench/audio/arm64.sh  (qemu-aarch64 -plugin libinsn_region.so stage-cost --count KEY --seconds $seconds)"
  echo
  echo "| configuration | far_end per 10 ms | near_end per 10 ms | both per 10 ms | × all four |"
  echo "|---|---:|---:|---:|---:|"
  rows=()
  for key in hp aec ns agc all; do
    line=$(qemu-aarch64 -L /usr/$gnu -plugin "$plugin" -d plugin "$bin" --count "$key" \
      --seconds "$seconds" 2>&1 >/dev/null | grep '^insn_region:')
    far=$(awk '{print $3}' <<<"$line")
    near=$(awk '{print $5}' <<<"$line")
    rows+=("$key $far $near")
  done
  blocks=$((seconds * 100))
  python3 "$here/stage_table.py" "$blocks" "${rows[@]}"
} | tee "$work/../arm64.md"
