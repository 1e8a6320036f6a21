#!/usr/bin/env bash
# The box seen from real viewers (headless Chromium): glass-to-glass latency, time from Join to
# the first frame, and the box's CPU and resident memory with 1 and with 5 viewers.
#
#   bash bench/appliance/run-viewers.sh
#
# Builds the release binaries, runs viewers.mjs inside a fresh network namespace that has only
# loopback (and a PID namespace, so nothing it started outlives it), and writes VIEWERS.md here
# (the notes under the "kept across runs" marker are kept), with the raw viewers-result.json and
# viewers-machine.env. Bounded: the run is killed after
# BENCH_TIMEOUT seconds (default 420). Needs root (unshare) and tests/e2e's playwright-core.
#
# Env: WIDTH HEIGHT FPS (1280 720 30), JOINS (5), WINDOW_S (20), SETTLE_S (5), VIEWPORT
# (480x360), CHROMIUM (/usr/bin/chromium), BENCH_VERBOSE=1 (the box's log on stderr).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

cargo build --release --bin roombox
cargo build --release -p roombox-signal
export BOX_BIN="$repo/target/release/roombox"
export SIGNAL_BIN="$repo/target/release/roombox-signal"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export CLK_TCK="$(getconf CLK_TCK)"

if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# Viewers 2-5 stand for people on other machines: their browsers run under SCHED_IDLE (a nice
# value would not do: Chromium resets its renderers to nice 0), so that decoding four more 720p30
# streams starves neither the box nor the measuring page. The box and viewer 1's browser run at
# normal priority.
printf '#!/bin/sh\nexec chrt --idle 0 "%s" "$@"\n' "$CHROMIUM" > "$out/chromium-idle"
chmod +x "$out/chromium-idle"
export CHROMIUM_EXTRA="$out/chromium-idle"

# The machine, for the record.
{
  echo "cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cores=$(nproc)"
  echo "mem=$(free -h | awk '/^Mem:/ {print $2}')"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version)"
  echo "chromium=$("$CHROMIUM" --version 2>/dev/null | head -1)"
  echo "node=$(node --version)"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock || echo '+local changes')"
  echo "loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.env"

echo "running viewers.mjs (at most ${BENCH_TIMEOUT:-420} s)..." >&2
status=0
timeout -k 15 "${BENCH_TIMEOUT:-420}" \
  unshare --net --pid --fork --mount-proc -- \
  bash -c 'ip link set lo up && exec node "$1"' bash "$here/viewers.mjs" > "$out/result.json" || status=$?
if [ "$status" -ne 0 ]; then
  echo "viewers.mjs failed (exit $status)" >&2
  exit "$status"
fi

cp "$out/result.json" "$here/viewers-result.json"
cp "$out/machine.env" "$here/viewers-machine.env"
node "$here/viewers-report.mjs" "$out/result.json" "$out/machine.env" "$here/VIEWERS.md"
echo "wrote $here/VIEWERS.md" >&2
