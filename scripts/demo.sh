#!/usr/bin/env bash
# The main job: build everything and run the box in demo mode (a local signaling server, a
# test-pattern video source and a tone), printing the URL to open. Extra flags go to
# `roombox demo` (see `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps/install.sh build
bash scripts/fetch-uapi-headers.sh
exec cargo run --release --locked --bin roombox -- demo "$@"
