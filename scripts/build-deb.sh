#!/usr/bin/env bash
# Builds the arm64 Debian package with cargo-deb into target/deb/ from the binary that
# scripts/cross-arm64.sh builds (run first if that binary is missing). Extra arguments go to
# `cargo deb`, e.g. --deb-revision 2. Debian bookworm, as root (installs what it needs).
set -euo pipefail
cd "$(dirname "$0")/.."

triple=aarch64-unknown-linux-gnu
target_dir=target/aarch64-cross
[ -x "$target_dir/$triple/release/roombox" ] || bash scripts/cross-arm64.sh
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '^3.8'
bash scripts/deps/install.sh package # binutils-aarch64-linux-gnu: cargo-deb strips with it

mkdir -p target/deb
# cargo-deb reads the binary from <target dir>/<triple>/release (the asset's target/release).
# --strip: the binary loses its line tables (100 MB of them), stripped with the cross binutils.
CARGO_TARGET_DIR=$target_dir cargo deb --no-build --strip --target "$triple" --output target/deb "$@"
