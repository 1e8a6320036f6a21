#!/usr/bin/env bash
# Probes that every tool the given stages use is there and runs: each probe does a small real
# job with the tool (compiles, assembles, starts the browser, runs an aarch64 program, asks
# mmdebstrap for a foreign-architecture root), so a runtime need that a package only
# Recommends shows up here, in the first minute, and not in the stage twenty minutes later.
#   bash scripts/deps/check.sh [STAGE...]     (no stage: every stage CI runs)
# Prints one line per probe; exits 1 if any failed, naming them. Needs no Rust toolchain.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- build test board vm cross package
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()

probe() { # probe NAME COMMAND...: runs COMMAND quietly, reports it by NAME
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "deps: ok   $name"
  else
    echo "deps: FAIL $name: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    failed+=("$name")
  fi
}

check_build() {
  probe "cmake + make build a C++ library" bash -c "cd '$work' && mkdir -p cm && cd cm &&
    printf 'int f(){return 1;}\n' >f.cpp &&
    printf 'cmake_minimum_required(VERSION 3.10)\nproject(p CXX)\nadd_library(f f.cpp)\n' >CMakeLists.txt &&
    cmake -S . -B b >/dev/null && cmake --build b >/dev/null"
  if [ "$(uname -m)" = x86_64 ]; then
    probe "nasm assembles x86-64 (openh264's SIMD)" bash -c "cd '$work' &&
      printf 'section .text\nglobal f\nf: pxor xmm0, xmm0\nret\n' >f.asm && nasm -f elf64 f.asm"
  fi
  probe "pkg-config finds alsa" pkg-config --exists alsa
  probe "libclang for bindgen" bash -c 'ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null'
  probe "CA certificates" test -s /etc/ssl/certs/ca-certificates.crt
  probe "python3" python3 -c 'import json, struct'
}

check_test() {
  probe "chromium renders a page headless" bash -c "timeout 60 chromium --headless --no-sandbox \
    --disable-gpu --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir='$work/chromium' --dump-dom 'data:text/html,<p>roombox-ok</p>' |
    grep -q roombox-ok"
  probe "a loopback-only namespace" unshare -n bash -c 'ip link set lo up && ip -o addr show lo | grep -q 127.0.0.1'
  probe "node and npm" bash -c 'node --version && npm --version'
  probe "ffmpeg encodes, ffprobe reads" bash -c "cd '$work' &&
    ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=5 -frames:v 5 -c:v ffv1 t.mkv &&
    ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 t.mkv | grep -qx 5"
  probe "systemd-analyze" systemd-analyze --version
  probe "coturn: turnserver and turnutils_uclient" bash -c 'command -v turnserver && command -v turnutils_uclient'
  probe "nftables: a masquerading NAT in a namespace" unshare -n bash -c "nft add table ip t &&
    nft add chain ip t p '{ type nat hook postrouting priority 100; }' &&
    nft add rule ip t p masquerade fully-random"
  probe "openssl: makes a certificate" bash -c 'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=probe -days 1 -keyout /dev/null -out /dev/null 2>/dev/null'
}

check_board() {
  probe "edid-decode" bash -c 'command -v edid-decode'
  probe "udevadm test (the rules' parser)" bash -c 'udevadm test --action=add /sys/class/net/lo >/dev/null 2>&1'
  probe "systemd-analyze" systemd-analyze --version
}

check_vm() {
  probe "qemu-system-x86_64" qemu-system-x86_64 --version
  probe "cpio, depmod, xz, make, gcc-12" bash -c 'for c in cpio depmod modprobe xz make gcc-12; do command -v $c >/dev/null || { echo "no $c"; exit 1; }; done'
  probe "v4l2-ctl, aplay, arecord (in the guest)" bash -c 'v4l2-ctl --version && command -v aplay && command -v arecord'
  probe "apt-get download (kernel, busybox)" bash -c "cd '$work' && apt-get download -q -o APT::Sandbox::User=root busybox-static >/dev/null && ls busybox-static_*.deb"
}

check_cross() {
  probe "aarch64 C compiler, run under qemu-aarch64-static" bash -c "cd '$work' &&
    printf '#include <stdio.h>\nint main(){puts(\"aarch64-ok\");return 0;}\n' >h.c &&
    aarch64-linux-gnu-gcc h.c -o h && qemu-aarch64-static -L /usr/aarch64-linux-gnu ./h | grep -q aarch64-ok"
  probe "Debian's rustc builds for aarch64 (libstd-rust-web-dev:arm64)" bash -c "cd '$work' &&
    printf 'fn main(){println!(\"rust-aarch64-ok\");}\n' >m.rs &&
    /usr/bin/rustc --edition 2021 --target aarch64-unknown-linux-gnu -C linker=aarch64-linux-gnu-gcc m.rs -o m &&
    qemu-aarch64-static -L /usr/aarch64-linux-gnu ./m | grep -q rust-aarch64-ok"
  probe "Debian's cargo" /usr/bin/cargo --version
  probe "pkg-config finds arm64 alsa" env PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --exists alsa
  probe "file" file --version
}

check_package() {
  source "$here/../lib/arm64-rootfs.sh"
  probe "binfmt_misc runs arm64 programs" arm64_binfmt
  # mmdebstrap checks, before anything else, that it can run the foreign architecture (with
  # arch-test); --simulate then resolves the package set without downloading it.
  probe "mmdebstrap can make an arm64 root (arch-test, qemu)" bash -c "mmdebstrap --simulate \
    --arch=arm64 --variant=essential bookworm /dev/null '$(debian_mirror)' </dev/null"
  probe "jq, objcopy (arm64)" bash -c 'jq --version && aarch64-linux-gnu-objcopy --version >/dev/null'
}

check_image() {
  check_package
  probe "mkfs.vfat, mcopy, sfdisk, mkfs.ext4, debugfs, bmaptool" bash -c 'for c in mkfs.vfat mcopy sfdisk mkfs.ext4 debugfs bmaptool; do command -v $c >/dev/null || { echo "no $c"; exit 1; }; done'
}

check_bench() {
  # bench/encode's pipelines on 5 small frames: a y4m file through y4mdec into openh264enc and
  # x264enc, parsed and muxed into Matroska, and every frame read back.
  probe "GStreamer: y4m through openh264enc and x264enc into Matroska" bash -c "cd '$work' &&
    gst-launch-1.0 -q videotestsrc num-buffers=5 ! video/x-raw,format=I420,width=64,height=48,framerate=30/1 ! y4menc ! filesink location=g.y4m &&
    for enc in 'openh264enc bitrate=200000 rate-control=bitrate multi-thread=1' 'x264enc speed-preset=ultrafast tune=zerolatency threads=1'; do
      gst-launch-1.0 -q filesrc location=g.y4m ! y4mdec ! \$enc ! h264parse ! matroskamux ! filesink location=g.mkv &&
      ffprobe -v error -count_frames -show_entries stream=nb_read_frames -of csv=p=0 g.mkv | grep -qx 5 || exit 1
    done"
  probe "ffmpeg's psnr and ssim filters" bash -c "ffmpeg -v info -nostats -f lavfi -i testsrc2=size=64x48:rate=5 \
    -f lavfi -i testsrc2=size=64x48:rate=5 -lavfi '[0:v]split[a0][a1];[1:v]split[b0][b1];[a0][b0]psnr;[a1][b1]ssim' -frames:v 5 -f null - 2>&1 |
    grep -q 'SSIM Y:'"
  probe "valgrind --tool=callgrind counts instructions" bash -c "cd '$work' &&
    valgrind --tool=callgrind --callgrind-out-file=cg.out /bin/true && grep -qE '^(totals|summary): *[0-9]+' cg.out"
  probe "/usr/bin/time reports peak RSS" bash -c "/usr/bin/time -f %M -o '$work/time' true && grep -qE '^[0-9]+$' '$work/time'"
  probe "free, lscpu, chrt" bash -c 'free -g >/dev/null && lscpu | grep -q "^Model name" && chrt --idle 0 true'
  # bench/audio: the two C candidates are found by pkg-config, the talkers made and resampled.
  probe "libspeexdsp and libwebrtc-audio-processing (0.3) for bench/audio" bash -c \
    "pkg-config --exists speexdsp && pkg-config --exists webrtc-audio-processing"
  probe "espeak-ng speaks into a WAV that sox resamples to 48 kHz" bash -c "cd '$work' &&
    espeak-ng -w e.wav 'one two' && sox -D e.wav -r 48000 e48.wav && soxi -r e48.wav | grep -qx 48000"
  # bench/audio/arm64.sh: its instruction-count plugin needs a qemu-aarch64 that loads plugins.
  probe "qemu-aarch64 (qemu-user) takes -plugin" bash -c "qemu-aarch64 --help | grep -q -- '^-plugin'"
}

for stage in "$@"; do
  declare -F "check_$stage" >/dev/null || { echo "deps: no probes for stage '$stage'" >&2; exit 2; }
  "check_$stage"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "deps: ${#failed[@]} probe(s) failed: ${failed[*]} (install: bash scripts/deps/install.sh $*)" >&2
  exit 1
fi
echo "deps: every probe passed for: $*"
