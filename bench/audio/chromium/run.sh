#!/usr/bin/env bash
# Chromium's own echo cancellation on the bench's headline room (80 ms, rt60 0.3 s, 100 ppm):
# writes far.wav and mic.wav (aec-candidates --chromium-wavs), has headless Chromium process
# mic.wav (fake capture device) while its page plays far.wav (run.mjs, page.html), then scores
# the recordings with roomsim's measures beside sonora, speexdsp and WebRTC 0.3
# (aec-candidates --chromium-score). Writes bench/audio/target/chromium.md.
# Needs Debian's chromium (`test` stage) and tests/e2e's playwright-core (npm ci there).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
dir=$here/target/chromium
mkdir -p "$dir"
rm -f "$dir"/chromium-*.wav
[ -d ../../tests/e2e/node_modules/playwright-core ] || (cd ../../tests/e2e && npm ci --no-audit --no-fund)
cargo build --release --locked --bin aec-candidates 2>&1 | tail -n 1
./target/release/aec-candidates --chromium-wavs "$dir"
CLK_TCK=$(getconf CLK_TCK) node chromium/run.mjs "$dir" >"$dir/run.json"
{
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(/usr/bin/chromium --version 2>/dev/null);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Command: bash bench/audio/chromium/run.sh"
  ./target/release/aec-candidates --chromium-score "$dir"
  echo
  echo "CPU seconds (user + system) of Chromium's processes over the $(python3 -c "import json; print(json.load(open('$dir/run.json'))[0]['seconds'])") s recording:"
  echo
  python3 - "$dir/run.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))
print("| configuration | far end started (s after the first recorded sample) | renderer | audio service | network service | browser | all |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in runs:
    c = r["cpuSeconds"]
    print(f"| {r['config']} | {r['farStart'] - r['firstFrame']:.2f} | {c.get('renderer', 0):.2f} | "
          f"{c.get('audio.mojom.AudioService', 0):.2f} | {c.get('network.mojom.NetworkService', 0):.2f} | "
          f"{c.get('browser', 0):.2f} | {sum(c.values()):.2f} |")
PY
} | tee "$here/target/chromium.md"
