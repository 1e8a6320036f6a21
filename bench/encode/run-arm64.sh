#!/usr/bin/env bash
# The box's software encode path against GStreamer's openh264enc for aarch64, both emulated: an
# arm64 Debian bookworm root (mmdebstrap, as tests/package/ makes it) with Debian's GStreamer
# and libopenh264, the box cross-compiled (scripts/cross-arm64.sh) copied in, and the two run
# in it by qemu-user through binfmt_misc on the same 720p y4m input at the box's settings
# (run.sh's box-unpaced and gst-openh264). Whole-process CPU time (user + sys, qemu's own
# translation included for both) per frame from the root's /usr/bin/time; rounds alternate
# which one goes first. Emulation cost is not a Pi's cost: only the ratio box/GStreamer means
# something. See bench/encode/README.md.
#
#   bash bench/encode/run-arm64.sh [ROUNDS]      # default 3 rounds
#
# Environment:
#   WORK=DIR         scratch directory (the arm64 root, kept between runs; input, outputs,
#                    logs); default /tmp/roombox-encode-arm64
#   BOX_ARM64=PATH   an aarch64 `roombox` already built (e.g. by scripts/cross-arm64.sh in
#                    another checkout); without it this tree is cross-built with
#                    scripts/cross-arm64.sh (about 16 CPU-minutes, and its unit tests)
#   FRAMES=N         frames of the input (default 300)
#   REBUILD_ROOT=1   make the arm64 root again even if $WORK has one with the same packages
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# A private mount namespace: the root's /proc is unmounted with this process, however it ends.
if [ -z "${ROOMBOX_ENC_ARM64_NS:-}" ]; then
  ROOMBOX_ENC_ARM64_NS=1 exec unshare --mount --propagation private bash "$here/run-arm64.sh" "$@"
fi
cd "$root"
source scripts/lib/arm64-rootfs.sh
rounds="${1:-3}"
work="${WORK:-/tmp/roombox-encode-arm64}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
BITRATE=2500000 # the box's recording bitrate (src/record: VIDEO_BPS)
GOP=120         # the box's periodic IDR: 4 s at 30 fps (EncoderParams::new)
FRAMES="${FRAMES:-300}"

# --- tools: mmdebstrap, arch-test, qemu-user-static (package stage); ffmpeg (bench stage) -------
bash scripts/deps/install.sh package bench
arm64_binfmt || { echo "run-arm64: binfmt_misc does not run arm64 programs here" >&2; exit 1; }

# --- the box for aarch64 --------------------------------------------------------------------------
if [ -n "${BOX_ARM64:-}" ]; then
  box_src="$BOX_ARM64"
else
  bash scripts/cross-arm64.sh
  box_src="target/aarch64-cross/aarch64-unknown-linux-gnu/release/roombox"
fi
file -b "$box_src" | grep -q 'ARM aarch64' || { echo "run-arm64: $box_src is not an aarch64 binary" >&2; exit 1; }

# --- the arm64 root: Debian's GStreamer and libopenh264, the box's runtime libraries -----------
# The box's part is its Debian package's Depends (Cargo.toml [package.metadata.deb]) less
# adduser (only the maintainer scripts use it); `time` measures from inside the root.
rootfs="$work/root"
pkgs="gstreamer1.0-tools,gstreamer1.0-plugins-base,gstreamer1.0-plugins-good,gstreamer1.0-plugins-bad,libopenh264-7,time,libasound2,libc6,libgcc-s1,libstdc++6,ca-certificates"
stamp="$work/root.packages"
if [ "${REBUILD_ROOT:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pkgs" ] || [ ! -x "$rootfs/usr/bin/gst-launch-1.0" ]; then
  rm -f "$stamp"
  umount "$rootfs/proc" 2>/dev/null || true
  rm -rf --one-file-system "$rootfs"
  t=$SECONDS
  bootstrap_arm64 "$rootfs" essential "$pkgs"
  echo "$pkgs" >"$stamp"
  echo "run-arm64: arm64 root made in $((SECONDS - t)) s"
fi
mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
in_root() { chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/root "$@"; }
[ "$(in_root uname -m)" = aarch64 ] || { echo "run-arm64: the root does not run aarch64 programs" >&2; exit 1; }

# --- input: 720p moving shapes with mild temporal noise (run.sh's moving-720) -----------------
input="$work/moving-720-$FRAMES.y4m"
[ -s "$input" ] || ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=4:allf=t" \
  -frames:v "$FRAMES" -pix_fmt yuv420p -f yuv4mpegpipe "$input"
mkdir -p "$rootfs/bench"
rm -f "$rootfs"/bench/*
cp "$input" "$rootfs/bench/in.y4m"
cp "$box_src" "$rootfs/bench/roombox"

# --- versions, NEON, and warm-up (GStreamer's plugin registry is made on its first run) --------
gst_version=$(in_root gst-launch-1.0 --version | sed -n 2p)
in_root gst-inspect-1.0 openh264enc >"$work/gst-inspect.log" 2>&1 ||
  { echo "run-arm64: no openh264enc in the root" >&2; cat "$work/gst-inspect.log" >&2; exit 1; }
deb_openh264=$(in_root dpkg-query -W -f '${Package} ${Version}' libopenh264-7)
box_version=$(in_root /bench/roombox --version)
# openh264's NEON routines (named *_AArch64_neon) in the box's binary and in Debian's library
# (which exports them), as scripts/cross-arm64.sh counts them.
lib=$(ls "$rootfs"/usr/lib/aarch64-linux-gnu/libopenh264.so.*.* | head -n1)
neon_box=$(aarch64-linux-gnu-nm "$box_src" 2>/dev/null | grep -c '_AArch64_neon$' || true)
neon_lib=$(aarch64-linux-gnu-nm -D "$lib" | grep -c '_AArch64_neon$' || true)

# --- runs: alternating rounds, both inside the root under qemu-user ---------------------------
cmd_of() { # variant round
  case $1 in
  box) # run.sh's box-unpaced
    echo "/bench/roombox record --video y4m:/bench/in.y4m --audio-in none --encoder openh264 --width 1280 --height 720 --fps 30 --frames $FRAMES --out /bench/out.box.r$2.mkv" ;;
  gst) # run.sh's gst-openh264: the box's settings, as fast as it goes
    echo "gst-launch-1.0 -q filesrc location=/bench/in.y4m ! y4mdec ! openh264enc bitrate=$BITRATE max-bitrate=$BITRATE rate-control=bitrate complexity=medium gop-size=$GOP enable-frame-skip=false multi-thread=1 usage-type=camera ! h264parse ! matroskamux ! filesink location=/bench/out.gst.r$2.mkv" ;;
  esac
}
frames_in() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }

results="$work/results-arm64.tsv"
echo -e "round\tvariant\tuser_s\tsys_s\tmaxrss_kb\twall_s\tframes\tbytes" >"$results"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
loads=()
start=$SECONDS
for r in $(seq 1 "$rounds"); do
  order=(box gst)
  [ $((r % 2)) = 0 ] && order=(gst box)
  for v in "${order[@]}"; do
    log="$work/$v.r$r.log"
    # shellcheck disable=SC2046 # the command line is split into words on purpose
    in_root /usr/bin/time -f "%U %S %M %e" -o /bench/time $(cmd_of "$v" "$r") >"$log" 2>&1 ||
      { echo "run-arm64: FAILED: $(cmd_of "$v" "$r")" >&2; cat "$log" >&2; exit 1; }
    read -r user sys rss wall <"$rootfs/bench/time"
    frames=$(frames_in "$rootfs/bench/out.$v.r$r.mkv")
    bytes=$(stat -c %s "$rootfs/bench/out.$v.r$r.mkv")
    echo -e "$r\t$v\t$user\t$sys\t$rss\t$wall\t$frames\t$bytes" | tee -a "$results"
    [ "$r" = 1 ] || rm -f "$rootfs/bench/out.$v.r$r.mkv"
  done
  loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done
neon_log=$(grep -o 'openh264 built with[^"]*' "$work/box.r1.log" | head -n1 || true)
[ -n "$neon_log" ] || neon_log="(no 'openh264 built with' line in the box's log)"

# --- summary -----------------------------------------------------------------------------------
{
  echo "- host: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r)"
  echo "- emulation: $(qemu-aarch64-static --version | head -n1) through binfmt_misc, both programs (and /usr/bin/time) aarch64 in a Debian bookworm arm64 root"
  echo "- load average before: $load_before; after each round: ${loads[*]}; $((SECONDS - start)) s of runs"
  echo "- the box: $box_version (aarch64, $(stat -c %s "$box_src") bytes), log: $neon_log; openh264 NEON routines (*_AArch64_neon symbols) in the binary: $neon_box"
  echo "- GStreamer: $gst_version (Debian arm64), openh264enc from $deb_openh264; NEON routines exported by $(basename "$lib"): $neon_lib"
  echo "- input: 1280x720, $FRAMES frames (testsrc2 with temporal noise), 2.5 Mbit/s, one thread, IDR every $GOP"
  echo
  echo "CPU is user+sys of the whole process (qemu-aarch64 running it) per frame written; kbit/s of the Matroska file at 30 fps. Ratio: box / gst CPU per frame in the same round."
  echo
  echo "| round | first | box CPU s | box ms/frame | box frames | box kbit/s | gst CPU s | gst ms/frame | gst frames | gst kbit/s | ratio box/gst |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' 'NR > 1 {cpu[$1, $2] = $3 + $4; fr[$1, $2] = $7; kb[$1, $2] = $8 * 8 * 30 / $7 / 1000; if (!($1 in first)) first[$1] = $2; n = $1}
    END {
      for (r = 1; r <= n; r++) {
        b = cpu[r, "box"] / fr[r, "box"] * 1000; g = cpu[r, "gst"] / fr[r, "gst"] * 1000
        printf "| %d | %s | %.2f | %.1f | %d | %.0f | %.2f | %.1f | %d | %.0f | %.3f |\n", r, first[r], cpu[r, "box"], b, fr[r, "box"], kb[r, "box"], cpu[r, "gst"], g, fr[r, "gst"], kb[r, "gst"], b / g
      }
    }' "$results"
  ratios=$(awk -F'\t' 'NR > 1 {cpu[$1, $2] = ($3 + $4) / $7; n = $1}
    END {for (r = 1; r <= n; r++) printf "%.3f\n", cpu[r, "box"] / cpu[r, "gst"]}' "$results" | sort -n)
  echo
  echo "median ratio box/gst: $(awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : sprintf("%.3f", (a[NR / 2] + a[NR / 2 + 1]) / 2)}' <<<"$ratios") (range $(head -n1 <<<"$ratios")-$(tail -n1 <<<"$ratios"), $rounds rounds)"
} | tee "$work/summary-arm64.md"
