#!/usr/bin/env bash
# Installs what the tests need beyond Rust and the build packages (install-build-deps.sh), on Debian bookworm (as root): Debian's chromium for
# the browser tests, ffmpeg to check recordings, iproute2 and util-linux for the loopback-only network namespace, Node.js,
# and the npm packages of tests/e2e. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

bash scripts/install-build-deps.sh

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
# ffprobe/ffmpeg: an independent reader for the files `roombox record` writes.
command -v ffprobe >/dev/null || need+=(ffmpeg)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
