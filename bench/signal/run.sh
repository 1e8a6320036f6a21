#!/usr/bin/env bash
# Benchmarks roombox-signal and the PeerJS server (npm `peer`) side by side, on the same load,
# in one run, on 127.0.0.1 only, and writes bench/signal/RESULTS.md. See README.md.
#
# Knobs (environment): CONNS (10000), HOLD_SECS (20), SAMPLES (20000), WARMUP (2000),
# MESSAGES (100000), WINDOW (64), ROUNDS (3), SDP_BYTES (1000), THREADS (1, the generator's
# runtime), ROOMBOX_PORT (9101), PEERJS_PORT (9102), OUT (bench/signal/RESULTS.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
CONNS="${CONNS:-10000}"
HOLD_SECS="${HOLD_SECS:-20}"
SAMPLES="${SAMPLES:-20000}"
WARMUP="${WARMUP:-2000}"
MESSAGES="${MESSAGES:-100000}"
WINDOW="${WINDOW:-64}"
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-1}"
SDP_BYTES="${SDP_BYTES:-1000}"
ROOMBOX_PORT="${ROOMBOX_PORT:-9101}"
PEERJS_PORT="${PEERJS_PORT:-9102}"
OUT="${OUT:-$here/RESULTS.md}"

log() { printf '[run.sh] %s\n' "$*" >&2; }

# Every server and the generator hold one descriptor a connection, plus a few.
want_fds=$((CONNS * 2 + 4096))
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want_fds" ]; then
    ulimit -Hn "$want_fds" 2>/dev/null || true
fi
ulimit -Sn "$want_fds" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
log "open-file limit: $(ulimit -Sn)"

work="$(mktemp -d)"
pids=()
stop_all() {
    # Stop what this script started, by pid: SIGTERM, up to 10 s, then SIGKILL.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 20 s) for a server's startup line in its log.
wait_for_line() {
    local file="$1" pattern="$2" pid="$3"
    for _ in $(seq 200); do
        if grep -q "$pattern" "$file" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    log "server did not start; its output:"
    cat "$file" >&2 || true
    return 1
}

log "building roombox-signal and the generator (release)"
(cd "$root" && cargo build --release --quiet -p roombox-signal -p roombox-signal-bench)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
signal_bin="$target_dir/release/roombox-signal"
bench_bin="$target_dir/release/roombox-signal-bench"

log "installing the PeerJS server (npm ci)"
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
peerjs_version="$(node -p "require('$here/node_modules/peer/package.json').version")"

# Other work on the machine shows up in latency and throughput: wait (at most QUIET_WAIT
# seconds, 180 by default) for the 1-minute load average to drop below the core count, then
# run anyway; the load is recorded either way.
quiet_deadline=$((SECONDS + ${QUIET_WAIT:-180}))
while awk -v n="$(nproc)" '{ exit !($1 >= n) }' /proc/loadavg && [ "$SECONDS" -lt "$quiet_deadline" ]; do
    sleep 5
done
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before the run: $load_before"
log "starting roombox-signal on 127.0.0.1:$ROOMBOX_PORT"
# Rate limit off (--rate-per-sec 0) for the throughput phase; everything else default
# (6 peers a room, ping every 5 s, Google STUN in welcome).
"$signal_bin" --listen "127.0.0.1:$ROOMBOX_PORT" --rate-per-sec 0 \
    >"$work/roombox.out" 2>"$work/roombox.err" &
roombox_pid=$!
pids+=("$roombox_pid")
wait_for_line "$work/roombox.out" "listening on" "$roombox_pid"

log "starting the PeerJS server $peerjs_version on 127.0.0.1:$PEERJS_PORT"
# Its concurrent-connection limit defaults to 5000; raised above the load.
node "$here/node_modules/peer/dist/bin/peerjs.js" --host 127.0.0.1 --port "$PEERJS_PORT" \
    --concurrent_limit $((CONNS * 2 + 100)) >"$work/peerjs.log" 2>&1 &
peerjs_pid=$!
pids+=("$peerjs_pid")
wait_for_line "$work/peerjs.log" "Started PeerServer" "$peerjs_pid"

bench() {
    local kind="$1" port="$2" pid="$3"
    # Bounded: the generator has its own timeouts; this is the backstop.
    timeout --kill-after=10 1200 "$bench_bin" run --server "$kind" --addr "127.0.0.1:$port" \
        --pid "$pid" --conns "$CONNS" --hold-secs "$HOLD_SECS" --warmup "$WARMUP" \
        --samples "$SAMPLES" --messages "$MESSAGES" --window "$WINDOW" --rounds "$ROUNDS" \
        --threads "$THREADS" --sdp-bytes "$SDP_BYTES" --out "$work/$kind.json"
}
bench roombox "$ROOMBOX_PORT" "$roombox_pid"
# Let the kernel finish closing the first run's sockets before the second.
sleep 5
bench peerjs "$PEERJS_PORT" "$peerjs_pid"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
stop_all

log "writing $(basename "$OUT")"
cpu="$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
mem_gib="$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
    echo "# Signaling server benchmark results"
    echo
    echo "Written by \`bench/signal/run.sh\` (see README.md for what each number means)."
    echo
    echo "| Machine | |"
    echo "|---|---|"
    echo "| CPU | $cpu |"
    echo "| Cores (online) | $(nproc) |"
    echo "| Memory | $mem_gib GiB |"
    echo "| Kernel | $(uname -sr) |"
    echo "| rustc | $(rustc --version) |"
    echo "| node | $(node --version) |"
    echo "| PeerJS server (npm peer) | $peerjs_version |"
    echo "| roombox commit | $commit (plus the working tree at run time) |"
    echo "| Load average (1, 5, 15 min) before / after | $load_before / $load_after |"
    echo "| Date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
    echo
    echo "Command: \`CONNS=$CONNS HOLD_SECS=$HOLD_SECS SAMPLES=$SAMPLES WARMUP=$WARMUP MESSAGES=$MESSAGES WINDOW=$WINDOW ROUNDS=$ROUNDS SDP_BYTES=$SDP_BYTES THREADS=$THREADS bench/signal/run.sh\`"
    echo
    echo "Both servers and the generator ran on this one machine, on 127.0.0.1, one after the"
    echo "other (roombox-signal first; each server sat idle while the other was measured)."
    echo
    echo "## Results"
    echo
    "$bench_bin" report "$work/roombox.json" "$work/peerjs.json"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
