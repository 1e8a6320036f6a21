#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, then the browser
# end-to-end tests in headless Chromium inside a loopback-only network namespace, then the
# device tests in a VM with the kernel's virtual HDMI, sound and codec devices, the aarch64
# cross build and the arm64 package.
# Run as root on Debian bookworm (apt installs and `unshare -n` need it).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every stage's Debian packages up front (one list: scripts/deps/packages.txt), then a probe of
# each tool, so a missing one fails in the first minutes, not in the stage that needs it.
bash scripts/deps/install.sh
bash scripts/deps/check.sh
bash scripts/fetch-uapi-headers.sh
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
bash scripts/web-vendor.sh --check
node --test tests/web/
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version '^3.8'
# The same list on a fresh minimal bookworm root: what this machine happens to have hides nothing.
bash tests/deps/fresh-root.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo build -p roombox-signal --locked
bash tests/systemd/verify.sh
# board/: the EDIDs (checksums, timings, edid-decode) and the EDID unit.
bash tests/board/run.sh
bash tests/e2e/run.sh
# Real kernel devices (vivid, snd-aloop, vicodec) in a VM booting Debian's kernel.
bash tests/vm/suite.sh
bash tests/vm/m2m-multiplanar.sh
# The box cross-compiled for aarch64 (the Pi), its unit tests under qemu-user.
bash scripts/cross-arm64.sh
# The arm64 Debian package installed, upgraded, removed and purged in an arm64 chroot. (The
# SD-card image takes too long under emulation for CI: image/README.md.)
bash tests/package/run.sh
