#!/usr/bin/env bash
# Soak test of the room box: thousands of join/leave cycles by browser-like WebRTC peers
# (roombox-soak, str0m) against a real roombox-signal and a real `roombox run`, all inside a
# fresh network namespace that has only loopback. Records the box's memory, threads and fds
# over the cycles, and the connect times, in bench/soak/RESULTS.md.
#
#   bash bench/soak/run.sh
#
# Env: SOAK_CYCLES (2000), SOAK_PARALLEL (3, at most 5), SOAK_LEAVE (mixed: leave | close |
# drop | mixed), SOAK_SAMPLE_EVERY (50), SOAK_MAX_SECS (720: no cycle starts later; a run cut
# short fails), SOAK_OUT (directory for the logs and JSON; default a new temporary one),
# SOAK_RESULTS (default bench/soak/RESULTS.md; "-" to skip writing it).
# Builds in CARGO_TARGET_DIR when set, else target/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ "${1:-}" = "--in-netns" ]; then
  # ---- Inside the namespace: only lo exists, so every packet stays on 127.0.0.1. ----
  out="$2"
  bin="$3"
  pids=()
  cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    done
  }
  trap cleanup EXIT

  "$bin/roombox-signal" --listen 127.0.0.1:0 --ice-servers "" >"$out/signal.out" 2>"$out/signal.log" &
  pids+=($!)
  addr=""
  for _ in $(seq 200); do
    line="$(head -n1 "$out/signal.out" 2>/dev/null || true)"
    if [[ "$line" =~ ^listening\ on\ http://([^[:space:]]+)$ ]]; then addr="${BASH_REMATCH[1]}"; break; fi
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "roombox-signal did not start: $(cat "$out/signal.log")" >&2; exit 1; }
  url="http://$addr"

  # The box makes its room secret in its state directory; the soak peer reads it there.
  mkdir -p "$out/state"
  RUST_LOG="info,str0m=warn" NO_COLOR=1 "$bin/roombox" run --signal-url "$url" --room soak --name "Soak box" \
    --state-dir "$out/state" \
    --video test --audio-in test --audio-out none --width 640 --height 360 --fps 15 --ice-loopback \
    >"$out/box.log" 2>&1 &
  box=$!
  pids+=("$box")
  for _ in $(seq 200); do grep -q " joined" "$out/box.log" && break; sleep 0.1; done
  grep -q " joined" "$out/box.log" || { echo "the box did not join: $(tail -n 20 "$out/box.log")" >&2; exit 1; }
  sleep 2 # pipeline up, one status line logged

  rc=0
  timeout -s KILL $((SOAK_MAX_SECS + 120)) "$bin/roombox-soak" --signal-url "$url" --room soak \
    --room-secret-file "$out/state/room-secret" \
    --cycles "$SOAK_CYCLES" --parallel "$SOAK_PARALLEL" --leave "$SOAK_LEAVE" \
    --box-pid "$box" --sample-every "$SOAK_SAMPLE_EVERY" --expect-size 640x360 \
    --max-secs "$SOAK_MAX_SECS" --json "$out/soak.json" --markdown "$out/soak.md" \
    2> >(tee "$out/soak.err" >&2) | tee "$out/soak.out" || rc=$?
  echo "$rc" >"$out/soak.rc"

  # The next status line after the soak (the box logs one every 5 s) must show no peer left.
  seen="$(grep -c "status:" "$out/box.log" || true)"
  for _ in $(seq 120); do
    now="$(grep -c "status:" "$out/box.log" || true)"
    [ "$now" -gt "$seen" ] && break
    sleep 0.1
  done
  grep "status:" "$out/box.log" | tail -n1 >"$out/box.status"
  kill -0 "$box" 2>/dev/null && echo alive >"$out/box.alive" || echo dead >"$out/box.alive"
  exit 0
fi

# ---- Outside: build, run in the namespace, write the results. ----
export SOAK_CYCLES="${SOAK_CYCLES:-2000}"
export SOAK_PARALLEL="${SOAK_PARALLEL:-3}"
export SOAK_LEAVE="${SOAK_LEAVE:-mixed}"
export SOAK_SAMPLE_EVERY="${SOAK_SAMPLE_EVERY:-50}"
export SOAK_MAX_SECS="${SOAK_MAX_SECS:-720}"
results="${SOAK_RESULTS:-$here/RESULTS.md}"
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/release"
out="${SOAK_OUT:-$(mktemp -d -t roombox-soak.XXXXXX)}"
mkdir -p "$out"

(cd "$repo" && cargo build --release -p roombox -p roombox-signal -p roombox-soak)

start="$(date -u +%Y-%m-%dT%H:%MZ)"
unshare --net -- bash -c 'ip link set lo up && exec bash "$0" --in-netns "$1" "$2"' \
  "$here/run.sh" "$out" "$bin"

rc="$(cat "$out/soak.rc")"
status="$(cat "$out/box.status" 2>/dev/null || true)"
peers="$(sed -nE 's/.*peers=([0-9]+).*/\1/p' <<<"$status")"
alive="$(cat "$out/box.alive" 2>/dev/null || echo unknown)"
warns="$(grep -cE " (WARN|ERROR) " "$out/box.log" || true)"
panics="$(grep -c "panicked" "$out/box.log" || true)"
echo "soak exit code $rc; box $alive; its last status line: ${status:-none}"
echo "logs and JSON in $out"

if [ "$results" != "-" ]; then
  notes=""
  marker="<!-- Notes below this line are kept by run.sh. -->"
  if [ -f "$results" ] && grep -qF "$marker" "$results"; then
    notes="$(sed -n "/^$marker\$/,\$p" "$results" | tail -n +2)"
  fi
  cpu="$(lscpu | sed -nE 's/^Model name:[[:space:]]+//p' | head -n1)"
  {
    echo "# Soak: the box over thousands of join/leave cycles"
    echo
    echo "Written by \`bench/soak/run.sh\` (${start}). Each cycle is one browser-like WebRTC peer"
    echo "(\`roombox-soak\`, str0m): join the room, offer audio (sendrecv) and video (recvonly) to the box"
    echo "with a fresh \`pc\`, trickle ICE on 127.0.0.1, wait for the connection, one decoded H.264"
    echo "picture and one Opus packet from the box, then go: \`leave\` on the signaling socket, or"
    echo "RTCP BYE and DTLS close_notify then \`leave\`, or the TCP connection just dropped, in turn."
    echo "The box: \`roombox run --video test --audio-in test --audio-out none --width 640 --height 360"
    echo "--fps 15 --ice-loopback\`; the signaling server: \`roombox-signal\`; all in a network namespace"
    echo "with only loopback."
    echo
    echo "\`\`\`"
    echo "SOAK_CYCLES=$SOAK_CYCLES SOAK_PARALLEL=$SOAK_PARALLEL SOAK_LEAVE=$SOAK_LEAVE bash bench/soak/run.sh"
    echo "\`\`\`"
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| CPU | ${cpu:-unknown} |"
    echo "| cores | $(nproc) |"
    echo "| memory | $(free -g | awk '/^Mem:/ {print $2 " GiB"}') |"
    echo "| kernel | $(uname -r) |"
    echo "| rustc | $(rustc --version) |"
    echo "| date | $(date -u +%Y-%m-%d) |"
    echo
    echo "## Results"
    echo
    echo "roombox-soak exit code: $rc. Its summary:"
    echo
    echo "\`\`\`"
    tail -n1 "$out/soak.out" 2>/dev/null || true
    echo "\`\`\`"
    echo
    echo "After the soak the box was $alive; its next status line (logged every 5 s) reported"
    echo "peers=${peers:-?}:"
    echo
    echo "\`\`\`"
    sed -E 's/^[0-9T:.Z-]+ +//' <<<"${status:-none}"
    echo "\`\`\`"
    echo
    echo "The box's log over the whole run: $warns WARN/ERROR lines, $panics panics."
    echo
    cat "$out/soak.md" 2>/dev/null || echo "(no results: the soak did not finish)"
    echo
    echo "$marker"
    if [ -n "$notes" ]; then echo "$notes"; fi
  } >"$results.tmp"
  mv "$results.tmp" "$results"
  echo "wrote $results"
fi

[ "$rc" = 0 ] && [ "$alive" = alive ] && [ "${peers:-x}" = 0 ]
