#!/usr/bin/env bash
# One VM boot: `roombox record` from vivid's HDMI input for 60 s at 640x480 and at 1280x720
# (30 fps asked), printing one markdown row each: timings, fps, offered, written, dropped.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked --bin roombox
mkdir -p target/vm/artifacts
bash tests/vm/run.sh --timeout 900 -- bash -c '
  set -e
  for t in "0 640x480p59" "9 1280x720p60"; do
    set -- $t
    v4l2-ctl -d /dev/video0 -i 1 >/dev/null
    v4l2-ctl -d /dev/video0 -c dv_timings_signal_mode=4 -c dv_timings=$1
    log=target/vm/artifacts/minute-$2.log
    target/debug/roombox record --video v4l2:/dev/video0 --audio-in none --fps 30 \
      --seconds 60 --encoder openh264 --out target/vm/artifacts/minute-$2.mkv >"$log" 2>&1
    sed -n "s/^video: \([0-9]*\) frames offered, \([0-9]*\) written, \([0-9]*\) dropped.*/| $2 | 30 | \1 | \2 | \3 |/p" "$log"
  done'
