#!/usr/bin/env bash
# The room display's work (examples/display_bench.rs: openh264 decoding a 720p and a 1080p
# screen share, the call picture laid out on a 1080p display, the file sink's I420, and the video
# plane's share: the picture copied into the plane's buffer, the names' overlay) counted in
# instructions per frame: the aarch64 build under qemu-user with bench/audio's TCG plugin, and
# the x86_64 build under callgrind, side by side. Instructions, not time: qemu's speed says
# nothing about a Pi's.
#
#   bash bench/display/arm64.sh            a Markdown table, also in target/display-arm64/arm64.md
#   FRAMES=60 bash bench/display/arm64.sh  frames a region (default 30, after the first IDR)
#   X86=0 bash bench/display/arm64.sh      aarch64 only (no valgrind run)
#
# The same method as bench/audio/arm64.sh: the example built for aarch64-unknown-linux-gnu as
# scripts/cross-arm64.sh builds the box (Debian's rustc-web/cargo-web, gcc-aarch64-linux-gnu,
# the same target directory, so either reuses the other's build), run with
# ROOMBOX_INSN_MARKERS=1 under the dynamic qemu-aarch64 (qemu-user; qemu-user-static cannot load
# plugins) with bench/audio/qemu/insn_region.c, which counts guest instructions between the
# example's marker syscalls (prctl "ROOM", region, on/off). On x86_64, callgrind toggles on the
# example's region functions (the markers are outside them). Needs the `cross` and `bench`
# stages (bash scripts/deps/install.sh cross bench: qemu-user, valgrind).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
work=$root/target/display-arm64
mkdir -p "$work"
frames=${FRAMES:-30}
x86=${X86:-1}
start=$SECONDS

for cmd in /usr/bin/cargo aarch64-linux-gnu-gcc qemu-aarch64 gcc python3; do
  command -v "$cmd" >/dev/null || {
    echo "arm64.sh: MISSING $cmd (bash scripts/deps/install.sh cross bench)" >&2
    exit 1
  }
done
if [ "$x86" = 1 ]; then
  for cmd in valgrind callgrind_annotate cargo; do
    command -v "$cmd" >/dev/null || {
      echo "arm64.sh: MISSING $cmd (bash scripts/deps/install.sh bench; or X86=0)" >&2
      exit 1
    }
  done
fi

# --- the plugin (bench/audio's source, built here) --------------------------------------------
source "$root/bench/audio/qemu/plugin.sh"

# --- the aarch64 build (environment: scripts/cross-env.sh, as scripts/cross-arm64.sh) --------
triple=aarch64-unknown-linux-gnu
gnu=aarch64-linux-gnu
(
  source scripts/cross-env.sh
  /usr/bin/cargo build --locked --release --target "$triple" --target-dir target/aarch64-cross \
    --example display_bench 2>&1 | tail -n 1
)
arm_bin=target/aarch64-cross/$triple/release/examples/display_bench
echo "arm64.sh: aarch64 build done at $((SECONDS - start)) s" >&2

# --- the counts -------------------------------------------------------------------------------
# aarch64: the plugin's "insn_regions: SIDE:INSNS/REGIONS ..." line, checked against the
# example's own "regions: SIDE:NAME:RUNS ..." line.
ROOMBOX_INSN_MARKERS=1 qemu-aarch64 -L /usr/$gnu -plugin "$plugin" -d plugin "$arm_bin" \
  "$frames" >"$work/arm64.regions" 2>"$work/arm64.log"
arm_regions=$(grep '^regions:' "$work/arm64.regions")
arm_counts=$(grep '^insn_regions:' "$work/arm64.log")
echo "arm64.sh: qemu run done at $((SECONDS - start)) s" >&2

x86_regions="" x86_counts="" x86_total=""
if [ "$x86" = 1 ]; then
  cargo build --locked --release --example display_bench 2>&1 | tail -n 1
  x86_bin=target/release/examples/display_bench
  names=$(sed 's/^regions://' <<<"$arm_regions" | tr ' ' '\n' | awk -F: 'NF == 3 {print $2}')
  toggles=()
  for name in $names; do toggles+=("--toggle-collect=display_bench::$name"); done
  ROOMBOX_INSN_MARKERS=1 valgrind --tool=callgrind "${toggles[@]}" \
    --callgrind-out-file="$work/callgrind.out" "$x86_bin" "$frames" \
    >"$work/x86.regions" 2>"$work/x86.log"
  x86_regions=$(grep '^regions:' "$work/x86.regions")
  x86_total=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$work/x86.log")
  # Each region's inclusive count (callgrind_annotate lists a function once per source file
  # its debug lines name; the largest is the whole function: the table's script checks that the
  # regions add up to what callgrind collected).
  incl=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$work/callgrind.out" \
    2>/dev/null)
  x86_counts=$(for name in $names; do
    awk -v f="display_bench::$name" '{
        for (i = 2; i <= NF; i++) if ($i == f || substr($i, length($i) - length(f)) == ":" f) {
          v = $1; gsub(",", "", v); if (v + 0 > m + 0) m = v
        }
      } END { printf "%s:%s\n", f, (m == "" ? 0 : m) }' <<<"$incl"
  done | tr '\n' ' ')
  echo "arm64.sh: callgrind run done at $((SECONDS - start)) s" >&2
fi

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores;" \
    "$(date -u '+%Y-%m-%d %H:%M UTC'); aarch64: $(/usr/bin/rustc --version | cut -d' ' -f1-2)" \
    "(Debian rustc-web), qemu-aarch64 $qver (TCG, plugin bench/audio/qemu/insn_region.c);" \
    "x86_64: $([ "$x86" = 1 ] && echo "$(rustc --version | cut -d' ' -f1-2)," \
      "$(valgrind --version)" || echo "not run")"
  echo "Command: bash bench/display/arm64.sh  (ROOMBOX_INSN_MARKERS=1 display_bench $frames:" \
    "qemu-aarch64 -plugin libinsn_region.so; valgrind --tool=callgrind --toggle-collect=REGION)"
  echo
  python3 - "$arm_regions" "$arm_counts" "$x86_regions" "$x86_counts" "$x86_total" <<'EOF'
import sys

arm_regions, arm_counts, x86_regions, x86_counts, x86_total = sys.argv[1:6]
labels = {
    "decode_720p": "decode 1280x720 (2.5 Mbit/s), P frame",
    "decode_1080p": "decode 1920x1080 (4 Mbit/s), P frame",
    "compose_share_1080p": "layout: one 1080p screen share full screen on 1080p",
    "compose_grid5_1080p": "layout: 5 cameras (720p each) in the grid on 1080p",
    "sink_i420_1080p": "file sink's I420 of the 1080p display",
    "decode_720p_idr": "decode 1280x720, the first IDR",
    "decode_1080p_idr": "decode 1920x1080, the first IDR",
    "plane_share_720p": "video plane: the 720p picture into the plane's buffer",
    "plane_share_1080p": "video plane: the 1080p picture into the plane's buffer",
    "overlay_1080p": "video plane: the names' ARGB overlay on 1080p (per layout change)",
}

def runs(line):  # "regions: 0:name:30 ..." -> {name: (side, runs)}
    out = {}
    for f in line.split()[1:]:
        side, name, n = f.split(":")
        out[name] = (int(side), int(n))
    return out

arm = runs(arm_regions)
by_side = {}
for f in arm_counts.split()[1:]:
    side, rest = f.split(":")
    insns, n = rest.split("/")
    by_side[int(side)] = (int(insns), int(n))
for name, (side, n) in arm.items():
    got = by_side.get(side, (0, 0))[1]
    if got != n:
        sys.exit(f"arm64.sh: region {name}: the plugin saw {got} regions, the example ran {n}")
x86 = runs(x86_regions) if x86_regions else {}
x86_insns = {}
for f in x86_counts.split():
    name, v = f.rsplit(":", 1)
    x86_insns[name.split("::")[-1]] = int(v)
if x86:
    if {k: v[1] for k, v in x86.items()} != {k: v[1] for k, v in arm.items()}:
        sys.exit(f"arm64.sh: the x86_64 run's regions differ: {x86_regions} / {arm_regions}")
    total, got = int(x86_total), sum(x86_insns.values())
    if abs(got - total) > total // 1000:
        sys.exit(f"arm64.sh: callgrind's regions add up to {got}, it collected {total}")

def m(v):
    return f"{v / 1e6:,.1f} M"

print("| region | frames | aarch64 (qemu) per frame | x86_64 (callgrind) per frame | aarch64 / x86_64 |")
print("|---|---:|---:|---:|---:|")
for name, (side, n) in arm.items():
    a = by_side[side][0] / n
    if name in x86 and x86[name][1] and x86_insns.get(name):
        x = x86_insns[name] / x86[name][1]
        xs, ratio = m(x), f"{a / x:.2f}"
    else:
        xs, ratio = "not run", ""
    print(f"| {labels.get(name, name)} | {n} | {m(a)} | {xs} | {ratio} |")
EOF
} | tee "$work/arm64.md"
echo "arm64.sh: done in $((SECONDS - start)) s" >&2
