#!/usr/bin/env bash
# Runs the browser end-to-end suite inside a fresh network namespace that has only loopback, so
# no test packet can reach any address but 127.0.0.1 (and nothing waits on unreachable STUN).
#
#   bash tests/e2e/run.sh [test files...]
#
# Env: SIGNAL_BIN (default: target/debug/roombox-signal, built here when unset), BOX_BIN (default:
# target/debug/roombox, built here when unset), SOAK_BIN (default: target/debug/roombox-soak, built
# here when unset), CHROMIUM
# (default /usr/bin/chromium), E2E_VERBOSE=1 (server log), E2E_ARTIFACTS=1 (screenshots at the end;
# failing tests always leave screenshots and page logs in tests/e2e/artifacts/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi

if [ -z "${SIGNAL_BIN:-}" ] && command -v cargo >/dev/null; then
  # The web client is embedded in the binary: rebuild so it serves the current web/.
  (cd "$repo" && cargo build -p roombox-signal)
  export SIGNAL_BIN="$repo/target/debug/roombox-signal"
fi

if [ -z "${BOX_BIN:-}" ]; then
  (cd "$repo" && cargo build --bin roombox)
  export BOX_BIN="$repo/target/debug/roombox"
fi

if [ -z "${SOAK_BIN:-}" ]; then
  # soak.test.js: the browser-like WebRTC peer that cycles against the box.
  (cd "$repo" && cargo build -p roombox-soak)
  export SOAK_BIN="$repo/target/debug/roombox-soak"
fi

if [ "$#" -eq 0 ]; then
  set -- ./*.test.js
fi

# A mount namespace too: `ip netns` (nat.test.js) keeps its namespaces under /run/netns, here a
# tmpfs of this run's own that goes with it.
exec unshare --net --mount --propagation private -- bash -c '
  mkdir -p /run/netns && mount -t tmpfs rb-netns /run/netns &&
  ip link set lo up && exec node --test --test-concurrency=1 "$@"' bash "$@"
