#!/usr/bin/env bash
# The V4L2 M2M encoder's and decoder's vicodec tests again on the multi-planar API (the one the Pi's
# bcm2835-codec uses): vicodec takes it as a module option at load, so this is its own VM boot
# (about 20 s). scripts/test.sh runs it after tests/vm/suite.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests_bin=$(cargo test --locked --lib --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$tests_bin" ] || { echo "m2m-multiplanar: no unit-test binary found" >&2; exit 1; }
bash tests/vm/run.sh --timeout 300 --modprobe "vicodec multiplanar=1" -- \
  bash -euo pipefail -c '
    grep -qx Y /sys/module/vicodec/parameters/multiplanar
    ROOMBOX_UNIT_TESTS=$0 bash tests/vm/unit-tests.sh vicodec' "$tests_bin"
