#!/usr/bin/env bash
# The echo-cancellation candidates (sonora's AEC3, speexdsp, the WebRTC 0.3 APM) on roomsim's
# simulated rooms, side by side in one run, then callgrind's instruction counts per 10 ms
# block for each. Installs nothing: checks what it needs and says which package is missing
# (scripts/deps/packages.txt, stage bench; `bash scripts/deps/install.sh bench` installs them).
#   bash bench/audio/run.sh            writes bench/audio/target/results.md (RESULTS.md-ready)
#   CG_SECONDS=2 bash bench/audio/run.sh   seconds of audio callgrind counts (default 2)
# Then the box's own chain stage by stage (stages.sh: target/stages.md), its aarch64 build's
# instruction counts under qemu-user (arm64.sh: target/arm64.md; needs the cross stage and
# qemu-user; SKIP_ARM64=1 skips it) and Chromium's own processing of the same signal
# (chromium/run.sh: target/chromium.md; SKIP_CHROMIUM=1 skips it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
out=$here/target/results.md
work=$here/target/run
cg_seconds=${CG_SECONDS:-2}

missing=()
need() { # need WHAT PACKAGE COMMAND...: COMMAND must succeed
  local what=$1 pkg=$2
  shift 2
  if ! "$@" >/dev/null 2>&1; then
    echo "run.sh: MISSING $what (Debian package $pkg)" >&2
    missing+=("$pkg")
  fi
}
need "cargo" "(rustup)" cargo --version
need "pkg-config" pkg-config pkg-config --version
need "speexdsp 1.2 headers and library" libspeexdsp-dev pkg-config --exists 'speexdsp >= 1.2'
need "WebRTC audio processing 0.3 (the old APM)" libwebrtc-audio-processing-dev \
  pkg-config --exact-version=0.3 webrtc-audio-processing
need "libclang (bindgen for webrtc-audio-processing-sys)" libclang-dev \
  bash -c 'ls /usr/lib/llvm-*/lib/libclang.so*'
need "a C++ compiler (the APM wrapper)" g++ g++ --version
need "espeak-ng (the recorded talkers)" espeak-ng espeak-ng --version
need "sox (resampling espeak's 22050 Hz to 48 kHz)" sox sox --version
need "valgrind (callgrind)" valgrind valgrind --version
need "lscpu" util-linux lscpu
need "python3" python3 python3 --version
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: install first: apt-get install ${missing[*]}" >&2
  exit 1
fi

cargo build --release --locked 2>&1 | tail -n 3
bin=$here/target/release/aec-candidates
mkdir -p "$work"

# Two talkers for the recorded-speech scenario: a low US voice for the far end, a female one
# for the room. Deterministic: espeak-ng gives the same samples for the same text, and sox -D
# does not dither (its dither is random: the speech rows moved between runs).
espeak-ng -v en-us -s 160 -w "$work/far22.wav" "Good morning everyone, thanks for joining. \
Let's start with the quarterly numbers. Revenue grew by twelve percent, mostly in the northern \
region, and the new product line shipped two weeks early. We still need to talk about hiring, \
the budget for the spring conference, and the office move. Could the room tell us how the \
pilot went last week?"
espeak-ng -v en+f3 -s 150 -w "$work/near22.wav" "Sure. The pilot went well overall. We had \
eleven customers on the new plan, and nine of them renewed. Two asked for a discount, which we \
gave. The main problem was the onboarding email, which went out late. We fixed that on \
Thursday. I think we are ready to expand it to the whole region next month."
for t in far near; do sox -D "$work/${t}22.wav" -r 48000 -c 1 -b 16 "$work/$t.wav"; done

{
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores" \
    "($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core); $(uname -r)"
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); rustc $(rustc --version | cut -d' ' -f2);" \
    "libspeexdsp $(pkg-config --modversion speexdsp);" \
    "libwebrtc-audio-processing $(pkg-config --modversion webrtc-audio-processing)"
  echo "Command: bash bench/audio/run.sh  (aec-candidates --far-wav far.wav --near-wav near.wav;" \
    "callgrind on $cg_seconds s per candidate)"
  echo
  "$bin" --far-wav "$work/far.wav" --near-wav "$work/near.wav"
  echo
  echo "### Instructions per 10 ms block (callgrind, the first $cg_seconds s of the 80 ms /" \
    "rt60 0.3 s / 100 ppm conversation, processing only)"
  echo
  echo "| candidate | instructions per block | × sonora AEC+NS |"
  echo "|---|---:|---:|"
  ref=
  for key in sonora-ns speex-ns webrtc-ns sonora-aec speex-aec webrtc-aec; do
    valgrind --tool=callgrind --toggle-collect='*callgrind_region*' \
      --callgrind-out-file="$work/callgrind.$key" \
      "$bin" --callgrind "$key" --seconds "$cg_seconds" >/dev/null 2>&1
    total=$(sed -n 's/^totals: *//p' "$work/callgrind.$key")
    per=$((total / (cg_seconds * 100)))
    ref=${ref:-$per}
    printf '| %s | %d | %s |\n' "$key" "$per" "$(python3 -c "print(f'{$per / $ref:.2f}')")"
  done
} | tee "$out"
echo "run.sh: wrote $out" >&2

bash "$here/stages.sh"
[ -n "${SKIP_ARM64:-}" ] || bash "$here/arm64.sh"
[ -n "${SKIP_CHROMIUM:-}" ] || bash "$here/chromium/run.sh"
