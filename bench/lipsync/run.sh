#!/usr/bin/env bash
# Lip sync of the box in Chromium, RUNS times (default 5): each run starts a signaling server,
# the box with its test pattern and tone, and a headless Chromium page, and measures the beep
# against the flash for LIPSYNC_SECONDS (default 15) seconds (tests/e2e/lipsync.test.js).
# Prints each run's line and writes them to bench/lipsync/last-run.txt.
#
#   bash bench/lipsync/run.sh [RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${1:-5}"
out="$here/last-run.txt"
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, LIPSYNC_SECONDS=${LIPSYNC_SECONDS:-15}"
  for i in $(seq "$runs"); do
    bash "$repo/tests/e2e/run.sh" lipsync.test.js 2>&1 | grep -E 'lipsync:|# audio minus video|flashes' || echo "run $i: the measurement failed"
  done
} | tee "$out"
