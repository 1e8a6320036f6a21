#!/usr/bin/env bash
# Cross-compiles the box (`roombox`, the root package) for aarch64-unknown-linux-gnu and runs
# its unit tests under qemu-user. Debian bookworm, as root (it installs what it needs).
#
# Toolchain: Debian's rustc-web/cargo-web (1.96) with libstd-rust-web-dev:arm64, because a
# rustup toolchain cannot fetch an aarch64 std on every machine; gcc/g++-aarch64-linux-gnu for
# the C parts (AWS-LC, openh264's C++, libopus via cmake) and the link; arm64 -dev libraries
# through multiarch (`dpkg --add-architecture arm64`); qemu-user-static runs the tests.
# The host's own toolchain and target/ are left alone: this uses target/aarch64-cross.
#
# Output (release profile, what the Debian package ships):
#   target/aarch64-cross/aarch64-unknown-linux-gnu/release/roombox
#
# Under qemu-user the unit tests run as on the host: nothing is skipped here. Tests that need
# a device no build machine has are #[ignore]d everywhere (today display::drm's
# `kms_on_a_real_card`, which needs a DRM card; the device tests run in tests/vm/). qemu-user
# runs the aarch64 code on the build machine's kernel: it checks code generation, the C
# libraries' aarch64 builds and the ABI, not the Pi's devices.
#
# Cost, measured on a 2-core machine: about 16 CPU-minutes to build (the C libraries AWS-LC,
# openh264 and libopus, and every crate, once, in the release profile), about 30 s of tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

target_dir=target/aarch64-cross

# --- packages (scripts/deps/packages.txt, stage cross) ---------------------------------------
bash scripts/deps/install.sh cross

# --- environment (triple, gnu, the toolchain's variables) -------------------------------------
source scripts/cross-env.sh
cargo=/usr/bin/cargo
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static

args=(--locked --release --target "$triple" --target-dir "$target_dir" -p roombox)

# --- build, then the unit tests (same profile: the dependencies are built once) ---------------
start=$SECONDS
"$cargo" build "${args[@]}" --bin roombox
bin=$target_dir/$triple/release/roombox
echo "cross-arm64: built in $((SECONDS - start)) s"
stripped=$(mktemp)
"$gnu-strip" -o "$stripped" "$bin"
echo "cross-arm64: $bin: $(stat -c %s "$bin") bytes ($(stat -c %s "$stripped") stripped);" \
  "$(file -b "$bin")"
rm -f "$stripped"
# openh264's NEON routines are in the binary (the link would fail without the one the box
# references; this counts them all, for the log).
neon=$("$gnu-nm" "$bin" | grep -c '_AArch64_neon$' || true)
[ "$neon" -gt 100 ] || { echo "cross-arm64: only $neon openh264 NEON routines in $bin" >&2; exit 1; }
echo "cross-arm64: openh264 NEON routines in the binary: $neon"
# The binary itself starts under qemu, and the shared libraries it needs (for the package).
echo "cross-arm64: $(qemu-aarch64-static "$bin" --version) runs under qemu-aarch64-static; needs" \
  "$(LD_TRACE_LOADED_OBJECTS=1 qemu-aarch64-static "$bin" | awk '{print $1}' | tr '\n' ' ')"

start=$SECONDS
"$cargo" test "${args[@]}" --lib --bins
echo "cross-arm64: unit tests under qemu-aarch64-static in $((SECONDS - start)) s"
