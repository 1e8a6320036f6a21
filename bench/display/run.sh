#!/usr/bin/env bash
# The room's display: per-frame CPU of decoding and laying out what people send the box
# (examples/display_bench.rs, release build), then glass to glass from a Chromium page's shared
# canvas to the box's display sink, RUNS times (tests/e2e/g2g.bench.js; G2G_SENDERS, default
# "1,5", and G2G_SECONDS, default 20), five senders again with the box not asking for tile
# sizes (G2G_VIEW=off), and the offset between the display and the speaker's WAV for a page's
# flash and beep (tests/e2e/avsync.bench.js). Writes what it printed to
# bench/display/last-run.txt.
#
#   bash bench/display/run.sh [RUNS]
#   FRAMES=120 bash bench/display/run.sh 0   the CPU part only (FRAMES a size, default 300)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
runs="${1:-3}"
frames="${FRAMES:-300}"
out="$here/last-run.txt"
{
  echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  (cd "$repo" && cargo run -q --release --example display_bench -- "$frames" 2>&1 | grep -v OpenH264)
  for i in $(seq "$runs"); do
    bash "$repo/tests/e2e/run.sh" g2g.bench.js 2>&1 | grep -E 'g2g:|error:' || echo "run $i: the measurement failed"
    # The same five senders without `view` messages: what asking for the tile's size saves.
    G2G_VIEW=off G2G_SENDERS=5 bash "$repo/tests/e2e/run.sh" g2g.bench.js 2>&1 |
      grep -E 'g2g:|error:' || echo "run $i (view off): the measurement failed"
    bash "$repo/tests/e2e/run.sh" avsync.bench.js 2>&1 | grep -E 'avsync:|error:' ||
      echo "run $i: the A/V sync measurement failed"
  done
} | tee "$out"
