#!/usr/bin/env bash
# The box's own chain (roombox::audio::processing::RoomProcessor, sonora) stage by stage on
# roomsim's default conversation: µs per 10 ms, all configurations interleaved in one run,
# then callgrind's instruction counts per 10 ms for each configuration (x86_64).
#   bash bench/audio/stages.sh          writes bench/audio/target/stages.md
#   ONLY=timing|callgrind bash bench/audio/stages.sh
# The aarch64 counts under qemu-user are bench/audio/arm64.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
work=$here/target/run
mkdir -p "$work"
only=${ONLY:-}

cargo build --release --locked --bin stage-cost 2>&1 | tail -n 1
bin=$here/target/release/stage-cost
names=(hp "high-pass only" aec "echo cancellation only" ns "noise suppression only"
  agc "automatic gain only" all "all four")

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores; $(uname -r);" \
    "$(date -u '+%Y-%m-%d %H:%M UTC'); rustc $(rustc --version | cut -d' ' -f2);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$only" != callgrind ]; then
    echo "Command: stage-cost --passes 4"
    echo
    "$bin" --passes 4
    echo
  fi
  if [ "$only" != timing ]; then
    echo "Command: valgrind --tool=callgrind --toggle-collect='*far_region*'" \
      "--toggle-collect='*near_region*' stage-cost --count KEY (the whole 25 s: 2500 blocks)"
    echo
    echo "| configuration | far_end per 10 ms | near_end per 10 ms | both per 10 ms | × all four |"
    echo "|---|---:|---:|---:|---:|"
    rows=()
    for ((i = 0; i < ${#names[@]}; i += 2)); do
      key=${names[i]}
      out=$work/callgrind.stage.$key
      valgrind --tool=callgrind --toggle-collect='*far_region*' --toggle-collect='*near_region*' \
        --callgrind-out-file="$out" "$bin" --count "$key" >/dev/null 2>&1
      # Each region's inclusive count (both regions are toggled, so the totals are their sum).
      incl=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null)
      far=$(awk '/stage_cost::far_region/ {gsub(",", "", $1); print $1; exit}' <<<"$incl")
      near=$(awk '/stage_cost::near_region/ {gsub(",", "", $1); print $1; exit}' <<<"$incl")
      rows+=("$key ${far:-0} ${near:-0}")
    done
    python3 "$here/stage_table.py" 2500 "${rows[@]}"
  fi
} | tee "$here/target/stages${only:+-$only}.md"
