#!/usr/bin/env bash
# What frame encryption costs the box (examples/e2ee_bench.rs: a 720p30 stream at 2.5 Mbit/s
# encoded by openh264, each frame sealed and opened with AES-256-GCM as crates/seal/src/frame.rs
# does, and 120-byte Opus packets): the x86_64 release build timed, then instructions per region
# counted (a) on x86_64 under callgrind, (b) on the aarch64 build under qemu-user with
# bench/audio's TCG plugin, with the ARMv8 crypto extensions (qemu's cortex-a72 has them), and
# (c) the same aarch64 binary seeing a CPU without them, as a Raspberry Pi 4 is (BCM2711: no
# AES, no PMULL): bench/e2ee/no_crypto_hwcap.c, preloaded, takes them out of AT_HWCAP, which is
# what the `aes` and `polyval` crates look at when they pick a backend at run time.
#
#   bash bench/e2ee/run.sh                  everything, Markdown in target/e2ee-bench/e2ee.md
#   FRAMES=240 bash bench/e2ee/run.sh       frames counted after the first (default 120: one
#                                           IDR period, 119 P frames and the periodic IDR)
#   TIMING_FRAMES=300 ROUNDS=3              the x86_64 timing runs (defaults)
#   SOFT_BUILD=1 bash bench/e2ee/run.sh     also (d): an aarch64 build with the crates' software
#                                           backends forced at compile time (--cfg
#                                           aes_backend="soft" --cfg polyval_backend="soft"), a
#                                           cross-check of (c); a full build in its own target
#                                           directory (target/e2ee-aarch64-soft, ~20 min on 2
#                                           cores the first time)
#
# Needs the `cross` and `bench` stages (bash scripts/deps/install.sh cross bench: Debian's
# rustc-web/cargo-web with the arm64 std, gcc-aarch64-linux-gnu, qemu-user, valgrind) and the
# host's cargo. Any missing tool stops it before it starts.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
work=$root/target/e2ee-bench
mkdir -p "$work"
frames=${FRAMES:-120}
timing_frames=${TIMING_FRAMES:-300}
rounds=${ROUNDS:-3}
soft=${SOFT_BUILD:-0}
start=$SECONDS

for cmd in cargo /usr/bin/cargo /usr/bin/rustc aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ \
  qemu-aarch64 gcc python3 valgrind callgrind_annotate lscpu dpkg-query apt-get tar; do
  command -v "$cmd" >/dev/null || {
    echo "e2ee/run.sh: MISSING $cmd (bash scripts/deps/install.sh cross bench)" >&2
    exit 1
  }
done
[ -d /usr/aarch64-linux-gnu/lib ] || {
  echo "e2ee/run.sh: MISSING /usr/aarch64-linux-gnu (libc6-dev-arm64-cross;" \
    "bash scripts/deps/install.sh cross bench)" >&2
  exit 1
}

# --- (x86_64) timing --------------------------------------------------------------------------
cargo build --locked --release --example e2ee_bench 2>&1 | tail -n 1
x86_bin=target/release/examples/e2ee_bench
for r in $(seq 1 "$rounds"); do
  "$x86_bin" "$timing_frames" >"$work/timing.$r.txt" 2>"$work/timing.$r.log"
  grep -v '^cpu:' "$work/timing.$r.txt" | sed "s/^/round $r: /" >&2
done
echo "e2ee/run.sh: x86_64 timing done at $((SECONDS - start)) s" >&2

# --- (a) x86_64 under callgrind ---------------------------------------------------------------
names=(encode_720p seal_720p open_720p seal_opus open_opus encode_720p_first)
toggles=()
for name in "${names[@]}"; do toggles+=("--toggle-collect=e2ee_bench::$name"); done
ROOMBOX_INSN_MARKERS=1 valgrind --tool=callgrind "${toggles[@]}" \
  --callgrind-out-file="$work/callgrind.out" "$x86_bin" "$frames" \
  >"$work/x86.regions" 2>"$work/x86.log"
x86_total=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$work/x86.log")
# Each region's inclusive count (callgrind_annotate may list a function once per source file
# its debug lines name; the largest is the whole function; the table checks that the regions
# add up to what callgrind collected).
incl=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$work/callgrind.out" \
  2>/dev/null)
x86_counts=$(for name in "${names[@]}"; do
  awk -v f="e2ee_bench::$name" '{
      for (i = 2; i <= NF; i++) if ($i == f || substr($i, length($i) - length(f)) == ":" f) {
        v = $1; gsub(",", "", v); if (v + 0 > m + 0) m = v
      }
    } END { printf "%s:%s\n", f, (m == "" ? 0 : m) }' <<<"$incl"
done | tr '\n' ' ')
echo "e2ee/run.sh: callgrind run done at $((SECONDS - start)) s" >&2

# --- the aarch64 builds (environment: scripts/cross-env.sh, as scripts/cross-arm64.sh) -------
source "$root/bench/audio/qemu/plugin.sh" # sets $plugin and $qver
triple=aarch64-unknown-linux-gnu
gnu=aarch64-linux-gnu
arm_build() { # TARGET_DIR [RUSTFLAGS for the target]
  (
    source scripts/cross-env.sh
    if [ -n "${2:-}" ]; then export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=$2; fi
    /usr/bin/cargo build --locked --release --target "$triple" --target-dir "$1" \
      --example e2ee_bench 2>&1 | tail -n 1
  )
}
arm_build target/aarch64-cross
arm_bin=target/aarch64-cross/$triple/release/examples/e2ee_bench
if [ "$soft" = 1 ]; then
  arm_build target/e2ee-aarch64-soft '--cfg aes_backend="soft" --cfg polyval_backend="soft"'
  soft_bin=target/e2ee-aarch64-soft/$triple/release/examples/e2ee_bench
fi
aarch64-linux-gnu-gcc -O2 -Wall -Werror -shared -fPIC -o "$work/libno_crypto_hwcap.so" \
  "$here/no_crypto_hwcap.c"
echo "e2ee/run.sh: aarch64 build done at $((SECONDS - start)) s" >&2

# --- (b), (c), (d): the aarch64 build under qemu-user, counted by the plugin ------------------
# -cpu cortex-a72: the Pi 4's core (glibc's string functions choose by the core too).
qemu_run() { # NAME BINARY [qemu options]
  local name=$1 bin=$2
  shift 2
  ROOMBOX_INSN_MARKERS=1 qemu-aarch64 -cpu cortex-a72 -L /usr/$gnu "$@" -plugin "$plugin" \
    -d plugin "$bin" "$frames" >"$work/$name.regions" 2>"$work/$name.log"
}
qemu_run arm64 "$arm_bin"
qemu_run arm64-nocrypto "$arm_bin" -E "LD_PRELOAD=$work/libno_crypto_hwcap.so"
runs=(arm64 arm64-nocrypto)
if [ "$soft" = 1 ]; then
  qemu_run arm64-soft "$soft_bin"
  runs+=(arm64-soft)
fi
echo "e2ee/run.sh: qemu runs done at $((SECONDS - start)) s" >&2

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores;" \
    "$(date -u '+%Y-%m-%d %H:%M UTC'); x86_64: $(rustc --version | cut -d' ' -f1-2)," \
    "$(valgrind --version); aarch64: $(/usr/bin/rustc --version | cut -d' ' -f1-2)" \
    "(Debian rustc-web), qemu-aarch64 $qver -cpu cortex-a72 (TCG, plugin" \
    "bench/audio/qemu/insn_region.c)"
  echo "Command: bash bench/e2ee/run.sh  (timing: e2ee_bench $timing_frames, $rounds rounds;" \
    "counts: ROOMBOX_INSN_MARKERS=1 e2ee_bench $frames)"
  echo
  python3 - "$work" "$x86_counts" "$x86_total" "${runs[@]}" <<'EOF'
import re
import sys

work, x86_counts, x86_total = sys.argv[1:4]
runs = sys.argv[4:]
PI_HZ, IPC, FPS, OPUS_PER_S = 1.5e9, 1.0, 30, 50
labels = {
    "encode_720p": "encode 720p (openh264), a frame after the first",
    "seal_720p": "seal a 720p frame",
    "open_720p": "open a 720p frame",
    "seal_opus": "seal an Opus packet (120 B)",
    "open_opus": "open an Opus packet",
    "encode_720p_first": "encode the first frame (IDR, encoder start)",
}
columns = {
    "x86": "x86_64 (callgrind)",
    "arm64": "aarch64, crypto ext.",
    "arm64-nocrypto": "aarch64, no crypto ext. (Pi 4)",
    "arm64-soft": "aarch64, soft forced at build",
}


def read(path):
    return open(path).read()


def parse_out(text):
    cpu = re.search(r"^cpu: (.*)$", text, re.M).group(1)
    regions = {}
    for f in re.search(r"^regions: (.*)$", text, re.M).group(1).split():
        side, name, n = f.split(":")
        regions[name] = (int(side), int(n))
    b = dict(kv.split("=") for kv in re.search(r"^bytes: (.*)$", text, re.M).group(1).split())
    return cpu, regions, {k: int(v) for k, v in b.items()}


data = {}  # column -> (cpu, {name: (runs, insns)}, bytes)
cpu, regions, nbytes = parse_out(read(f"{work}/x86.regions"))
x86 = {}
for f in x86_counts.split():
    name, v = f.rsplit(":", 1)
    x86[name.split("::")[-1]] = int(v)
total, got = int(x86_total), sum(x86.values())
if abs(got - total) > total // 1000:
    sys.exit(f"e2ee/run.sh: callgrind's regions add up to {got}, it collected {total}")
data["x86"] = (cpu, {k: (n, x86[k]) for k, (_, n) in regions.items()}, nbytes)
for run in runs:
    cpu, regions, nbytes = parse_out(read(f"{work}/{run}.regions"))
    line = re.search(r"^insn_regions: (.*)$", read(f"{work}/{run}.log"), re.M).group(1)
    by_side = {}
    for f in line.split():
        side, rest = f.split(":")
        insns, n = rest.split("/")
        by_side[int(side)] = (int(n), int(insns))
    for name, (side, n) in regions.items():
        if by_side.get(side, (0, 0))[0] != n:
            sys.exit(f"e2ee/run.sh: {run}: region {name} ran {n} times, the plugin saw "
                     f"{by_side.get(side, (0, 0))[0]}")
    data[run] = (cpu, {name: by_side[side] for name, (side, n) in regions.items()}, nbytes)

# The aarch64 runs must have seen what they are for.
want = {"arm64": "aes=true pmull=true", "arm64-nocrypto": "aes=false pmull=false"}
for run, w in want.items():
    if not data[run][0].startswith(f"aarch64 {w}"):
        sys.exit(f"e2ee/run.sh: {run} saw '{data[run][0]}', expected '{w}'")

cols = ["x86"] + runs


def per(col, name):
    n, insns = data[col][1][name]
    return insns / n


def m(v):
    return f"{v / 1e6:,.2f} M" if v >= 1e6 else f"{v / 1e3:,.1f} k"


print("CPU features each run saw (`cpu:` line of the example):")
print()
for col in cols:
    print(f"- {columns[col]}: `{data[col][0]}`")
print()
print("Instructions per call (mean over the calls):")
print()
print("| region | calls | " + " | ".join(columns[c] for c in cols) + " |")
print("|---|---:|" + "---:|" * len(cols))
for name in labels:
    n = data["x86"][1][name][0]
    print(f"| {labels[name]} | {n} | " + " | ".join(m(per(c, name)) for c in cols) + " |")
print()
print("Per byte (the sealed regions' instructions over the bytes they took in: the frame for "
      "sealing, the sealed frame for opening):")
print()
print("| | " + " | ".join(columns[c] for c in cols) + " |")
print("|---|" + "---:|" * len(cols))
for name, key in [("seal_720p", "video_plain"), ("open_720p", "video_sealed")]:
    row = []
    for c in cols:
        _, r, b = data[c]
        row.append(f"{r[name][1] / b[key]:.1f}")
    print(f"| {labels[name]}, per byte | " + " | ".join(row) + " |")
for c in cols:
    _, _, b = data[c]
    if b["video_plain"] != data["x86"][2]["video_plain"]:
        print(f"\n({columns[c]}: the encoder gave {b['video_plain'] / b['video_frames']:.0f} "
              f"bytes a frame, x86_64 {data['x86'][2]['video_plain'] / data['x86'][2]['video_frames']:.0f})")
b = data["x86"][2]
print()
print(f"Frames: {b['video_plain'] / b['video_frames']:,.0f} bytes a frame on average, "
      f"{b['slices'] / b['video_frames']:.2f} slices a frame; sealed "
      f"{b['video_sealed'] / b['video_frames']:,.0f} (+{(b['video_sealed'] - b['video_plain']) / b['video_frames']:.1f} "
      f"bytes, {100 * (b['video_sealed'] - b['video_plain']) / b['video_plain']:.2f}%); Opus "
      f"{b['opus_plain']} -> {b['opus_sealed']} bytes.")
print()
print(f"A Pi 4 core's share at 720p30 + {OPUS_PER_S} Opus packets/s, assuming {IPC:g} "
      f"instruction a cycle at {PI_HZ / 1e9:g} GHz ({PI_HZ * IPC / 1e6:,.0f} M instructions "
      "a second), from each aarch64 column:")
print()
print("| work | per second | " + " | ".join(columns[c] for c in runs) + " |")
print("|---|---|" + "---:|" * len(runs))
rows = [
    ("sealing (once for 1 or 5 viewers)", f"{FPS} frames + {OPUS_PER_S} packets",
     lambda c: FPS * per(c, "seal_720p") + OPUS_PER_S * per(c, "seal_opus")),
    ("1 viewer: sealing + opening the viewer's voice", f"+ {OPUS_PER_S} packets opened",
     lambda c: FPS * per(c, "seal_720p") + OPUS_PER_S * (per(c, "seal_opus") + per(c, "open_opus"))),
    ("5 viewers: sealing (once) + opening their 5 voices", f"+ {5 * OPUS_PER_S} packets opened",
     lambda c: FPS * per(c, "seal_720p")
     + OPUS_PER_S * (per(c, "seal_opus") + 5 * per(c, "open_opus"))),
    ("opening one sender's 720p30 video and voice", f"{FPS} frames + {OPUS_PER_S} packets",
     lambda c: FPS * per(c, "open_720p") + OPUS_PER_S * per(c, "open_opus")),
    ("opening video people send, per Mbit/s", "125,000 bytes",
     lambda c: 125_000 * data[c][1]["open_720p"][1] / data[c][2]["video_sealed"]),
    ("for scale: openh264 encoding 720p30 in software", f"{FPS} frames",
     lambda c: FPS * per(c, "encode_720p")),
]
for label, what, f in rows:
    cells = [f"{m(f(c))} = {100 * f(c) / (PI_HZ * IPC):.2f}%" for c in runs]
    print(f"| {label} | {what} | " + " | ".join(cells) + " |")
EOF
} | tee "$work/e2ee.md"
echo "e2ee/run.sh: done in $((SECONDS - start)) s" >&2
