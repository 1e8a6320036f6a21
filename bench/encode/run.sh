#!/usr/bin/env bash
# The box's software encode path against GStreamer's openh264enc (the same library) and x264 on
# the same y4m inputs, at the same bitrate: whole-process CPU time per frame, peak RSS, frames
# written, PSNR/SSIM against the source, and callgrind instruction counts. Runs alternate
# (every round runs every variant once, in a rotated order) so drift in a shared machine's load
# spreads over all of them. See bench/encode/README.md.
#
#   bash bench/encode/run.sh [ROUNDS]          # default 5 rounds
#
# Environment:
#   WORK=DIR       scratch directory (inputs, outputs, logs); default /tmp/roombox-encode-bench
#   BOX_OLD=PATH   another roombox binary (e.g. an older commit's) measured beside this tree's
#   BOX_OLD_UNPACED=1  BOX_OLD has `record --frames` too: measure it unpaced as well
#   CALLGRIND=0    skip the instruction counts (slow: a few minutes)
#   SWEEP=0        skip the encoder settings comparison (encode::openh264::tests::settings_sweep)
#   ONLY=LIST      variants to run, comma-separated (default: all)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-5}"
work="${WORK:-/tmp/roombox-encode-bench}"
mkdir -p "$work"
BITRATE=2500000 # the box's recording bitrate (src/record: VIDEO_BPS)
GOP=120         # the box's periodic IDR: 4 s at 30 fps (EncoderParams::new)
FRAMES=300

# --- tools: the build and bench stages of scripts/deps/packages.txt, each probed ---------------
bash "$root/scripts/deps/install.sh" build bench
bash "$root/scripts/deps/check.sh" build bench

# --- inputs: 300 frames of I420 at 30 fps ------------------------------------------------------
# moving: ffmpeg's testsrc2 (moving shapes, gradients, a counter) with mild temporal noise, as a
# camera's sensor gives; static: one slide-like frame (white page, title bar, text-like lines,
# a chart) repeated, as a laptop showing slides over HDMI gives.
make_input() { # name size filtergraph
  local out="$work/$1.y4m"
  [ -s "$out" ] && return
  ffmpeg -v error -y -f lavfi -i "$3" -frames:v "$FRAMES" -pix_fmt yuv420p -f yuv4mpegpipe "$out"
}
slide() { # size
  local w=${1%x*} h=${1#*x} g=""
  for i in $(seq 0 13); do # 14 "text lines" of varying length under a title bar
    g+=",drawbox=x=$((w / 12)):y=$((h / 5 + i * h / 22)):w=$((w / 3 + (i * 97 % 5) * w / 12)):h=$((h / 60)):color=0x303030:t=fill"
  done
  echo "color=c=white:s=$1:r=30,drawbox=x=0:y=0:w=$w:h=$((h / 8)):color=0x1f4e79:t=fill,drawbox=x=$((w * 2 / 3)):y=$((h / 4)):w=$((w / 4)):h=$((h / 2)):color=0xc55a11:t=3,drawgrid=x=$((w * 2 / 3)):y=$((h / 4)):w=$((w / 16)):h=$((h / 16)):color=0xa0a0a0:t=1${g}"
}
inputs=(moving-720 moving-1080 static-1080)
make_input moving-720 1280x720 "testsrc2=size=1280x720:rate=30,noise=alls=4:allf=t"
make_input moving-1080 1920x1080 "testsrc2=size=1920x1080:rate=30,noise=alls=4:allf=t"
make_input static-1080 1920x1080 "$(slide 1920x1080)"

# --- the box ------------------------------------------------------------------------------------
(cd "$root" && cargo build --release --locked --bin roombox -q)
box="${CARGO_TARGET_DIR:-$root/target}/release/roombox"
box_copy="$work/roombox-new" # a copy, so another build of the tree cannot swap it mid-run
cp "$box" "$box_copy"

size_of() { head -1 "$work/$1.y4m" | tr ' ' '\n' | sed -n 's/^W//p;s/^H//p' | paste -sd' '; }

# One command per variant; $in is the input, $out the Matroska file to write.
variant_cmd() { # variant input out
  local v=$1 in="$work/$2.y4m" out=$3 w h
  read -r w h < <(size_of "$2")
  case $v in
  box-paced) # as the box runs: the file paced at 30 fps; 10 s of it
    echo "$box_copy record --video y4m:$in --audio-in none --encoder openh264 --width $w --height $h --fps 30 --seconds 10 --out $out" ;;
  box-unpaced) # the same encoder path, the file read as fast as the encoder goes
    echo "$box_copy record --video y4m:$in --audio-in none --encoder openh264 --width $w --height $h --fps 30 --frames $FRAMES --out $out" ;;
  old-paced)
    echo "$BOX_OLD record --video y4m:$in --audio-in none --encoder openh264 --width $w --height $h --fps 30 --seconds 10 --out $out" ;;
  old-unpaced)
    echo "$BOX_OLD record --video y4m:$in --audio-in none --encoder openh264 --width $w --height $h --fps 30 --frames $FRAMES --out $out" ;;
  gst-openh264) # the box's settings: bitrate rate control, no frame skipping, one thread, IDR every 120
    echo "gst-launch-1.0 -q filesrc location=$in ! y4mdec ! openh264enc bitrate=$BITRATE max-bitrate=$BITRATE rate-control=bitrate complexity=medium gop-size=$GOP enable-frame-skip=false multi-thread=1 usage-type=camera ! h264parse ! matroskamux ! filesink location=$out" ;;
  gst-openh264-paced) # the same, paced at 30 fps by the pipeline clock, as a live pipeline runs
    echo "gst-launch-1.0 -q filesrc location=$in ! y4mdec ! clocksync ! openh264enc bitrate=$BITRATE max-bitrate=$BITRATE rate-control=bitrate complexity=medium gop-size=$GOP enable-frame-skip=false multi-thread=1 usage-type=camera ! h264parse ! matroskamux ! filesink location=$out" ;;
  gst-x264)
    echo "gst-launch-1.0 -q filesrc location=$in ! y4mdec ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=$((BITRATE / 1000)) key-int-max=$GOP threads=1 ! h264parse ! matroskamux ! filesink location=$out" ;;
  esac
}

variants=(box-paced box-unpaced gst-openh264-paced gst-openh264 gst-x264)
if [ -n "${BOX_OLD:-}" ]; then
  variants+=(old-paced)
  [ "${BOX_OLD_UNPACED:-0}" = 1 ] && variants+=(old-unpaced)
fi
if [ -n "${ONLY:-}" ]; then IFS=, read -r -a variants <<<"$ONLY"; fi

frames_in() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }

# PSNR (average, dB) and SSIM (All) against the source, aligned by frame number (the box's
# Matroska timestamps are capture times, so pts are not compared), over the first N frames.
# An output where the box held unchanged pictures (grid=1) is first put back on the 30 fps grid
# by its timestamps, each held frame shown again, as a player does.
quality() { # out input N grid
  local g=""
  [ "$4" = 1 ] && g="fps=30:start_time=0,"
  ffmpeg -v info -nostats -i "$1" -i "$work/$2.y4m" -lavfi \
    "[0:v]${g}trim=end_frame=$3,settb=1/30,setpts=N,split[a0][a1];[1:v]trim=end_frame=$3,settb=1/30,setpts=N,split[b0][b1];[a0][b0]psnr;[a1][b1]ssim" \
    -f null - 2>&1 | awk '/PSNR y:/ {for(i=1;i<=NF;i++) if($i ~ /^average:/){split($i,a,":"); p=a[2]}}
      /SSIM Y:/ {for(i=1;i<=NF;i++) if($i ~ /^All:/){split($i,a,":"); s=a[2]}} END {print p, s}'
}

results="$work/results.tsv"
echo -e "round\tinput\tvariant\tuser_s\tsys_s\tmaxrss_kb\twall_s\tframes\tbytes\tpsnr\tssim\tdropped" >"$results"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
loads=()
for r in $(seq 1 "$rounds"); do
  for input in "${inputs[@]}"; do
    n=${#variants[@]}
    for k in $(seq 0 $((n - 1))); do
      v=${variants[$(((k + r + ${#input}) % n))]} # rotate the order every round
      out="$work/$input.$v.r$r.mkv"
      cmd="$(variant_cmd "$v" "$input" "$out")"
      /usr/bin/time -f "%U %S %M %e" -o "$work/time" $cmd >"$work/$input.$v.log" 2>&1 ||
        { echo "FAILED: $cmd" >&2; cat "$work/$input.$v.log" >&2; exit 1; }
      read -r user sys rss wall <"$work/time"
      frames=$(frames_in "$out")
      bytes=$(stat -c %s "$out")
      # The box's report: frames it dropped because the encoder was behind (a paced run on a
      # loaded machine) and frames the encoder did not code (held). A dropped frame shifts the
      # alignment by number, so that run gets no quality; a held one is shown again.
      dropped=$(sed -n 's/.* dropped (\([0-9]*\) while the encoder was busy.*/\1/p' "$work/$input.$v.log")
      held=$(sed -n 's/.* busy, \([0-9]*\) by the encoder.*/\1/p' "$work/$input.$v.log")
      dropped=${dropped:-0}
      qn=$FRAMES grid=0 # frames compared (not n: that is the variant count of the loop above)
      [ "${held:-0}" -gt 0 ] && grid=1
      [ "$grid" = 0 ] && [ "$frames" -lt "$FRAMES" ] && qn=$frames # a paced run that fell behind the clock
      q="- -"
      [ "$r" = 1 ] && [ "$dropped" = 0 ] && q="$(quality "$out" "$input" "$qn" "$grid")"
      read -r psnr ssim <<<"$q"
      echo -e "$r\t$input\t$v\t$user\t$sys\t$rss\t$wall\t$frames\t$bytes\t$psnr\t$ssim\t$dropped" | tee -a "$results"
      [ "$r" = 1 ] || rm -f "$out"
    done
  done
  loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
done

# --- instruction counts: callgrind, whole process, 720p ----------------------------------------
cg="$work/callgrind.tsv"
: >"$cg"
if [ "${CALLGRIND:-1}" != 0 ]; then
  cg_frames=150
  ffmpeg -v error -y -i "$work/moving-720.y4m" -frames:v $cg_frames -f yuv4mpegpipe "$work/cg-720.y4m"
  cg_run() { # name command...
    local name=$1
    shift
    valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$work/callgrind.$name.out" "$@" \
      >"$work/callgrind.$name.log" 2>&1
    local ir
    ir=$(sed -n 's/^totals: *//p;s/^summary: *//p' "$work/callgrind.$name.out" | head -1)
    echo -e "$name\t$ir" | tee -a "$cg"
  }
  box_cg() { # name binary
    cg_run "$1" "$2" record --video "y4m:$work/cg-720.y4m" --audio-in none --encoder openh264 \
      --width 1280 --height 720 --fps 30 --frames $cg_frames --out "$work/cg.$1.mkv"
  }
  box_cg box "$box_copy"
  if [ -n "${BOX_OLD:-}" ] && [ "${BOX_OLD_UNPACED:-0}" = 1 ]; then box_cg old "$BOX_OLD"; fi
  cg_run gst-openh264 gst-launch-1.0 -q filesrc location="$work/cg-720.y4m" ! y4mdec ! openh264enc \
    bitrate=$BITRATE max-bitrate=$BITRATE rate-control=bitrate complexity=medium gop-size=$GOP \
    enable-frame-skip=false multi-thread=1 usage-type=camera ! h264parse ! matroskamux ! \
    filesink location="$work/cg.gst.mkv"
fi

# --- settings: the box's own openh264 build with each OpenH264Config variant ------------------
# The test encode::openh264::tests::settings_sweep encodes the frames held in memory and times
# the encoding thread alone; quality as above.
sweep="$work/sweep.tsv"
: >"$sweep"
if [ "${SWEEP:-1}" != 0 ]; then
  testbin=$(cd "$root" && cargo test --release --locked --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "roombox" and m["profile"]["test"] and m.get("executable"):
        print(m["executable"])')
  [ -x "$testbin" ] || { echo "no library test binary" >&2; exit 1; }
  for input in "${inputs[@]}"; do
    dir="$work/sweep-$input"
    mkdir -p "$dir"
    ROOMBOX_SWEEP_Y4M="$work/$input.y4m" ROOMBOX_SWEEP_OUT="$dir" ROOMBOX_SWEEP_ROUNDS="$rounds" \
      "$testbin" --ignored --exact encode::openh264::tests::settings_sweep --nocapture 2>/dev/null |
      awk -v i="$input" '$1 == "SWEEP" {print i "\t" $2 "\t" $3 "\t" $4 "\t" $5 "\t" $6}' >"$dir/runs.tsv"
    for name in $(cut -f2 "$dir/runs.tsv" | sort -u); do
      f="$dir/$name.h264"
      [ -f "$f" ] || f="$dir/$name.y4m"
      # Every frame is there (a decoded y4m repeats the held ones): aligned by number.
      read -r psnr ssim <<<"$(quality "$f" "$input" "$FRAMES" 0)"
      awk -v n="$name" -v p="$psnr" -v s="$ssim" -F'\t' '$2 == n {print $0 "\t" p "\t" s}' "$dir/runs.tsv" >>"$sweep"
      rm -f "$dir/$name.y4m"
    done
  done
fi

# --- summary ------------------------------------------------------------------------------------
{
  echo "- cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores"
  echo "- load average before: $load_before; after each round: ${loads[*]}"
  echo "- $(gst-launch-1.0 --version | sed -n 2p), openh264enc from $(dpkg-query -W -f '${Package} ${Version}' libopenh264-7 2>/dev/null || echo libopenh264), ffmpeg $(ffmpeg -version | awk 'NR==1 {print $3}'), $(rustc --version)"
  echo
  python3 "$here/summarize.py" "$results" "$cg" "$FRAMES" "$sweep"
} | tee "$work/summary.md"
