#!/usr/bin/env bash
# The device tests: builds the box and its unit-test binary on the host, boots one VM
# (tests/vm/run.sh) and runs every tests/vm/cases/*.sh inside it, in name order. A case passes
# when it exits 0. In the guest each case has:
#   ROOMBOX_BIN         the roombox binary (debug build)
#   ROOMBOX_UNIT_TESTS  the root package's unit-test binary: run the ignored device tests with
#                       "$ROOMBOX_UNIT_TESTS --ignored --exact NAME" or a filter
#   VM_ARTIFACTS        a folder kept after the run (target/vm/artifacts) for files to look at
# Usage: tests/vm/suite.sh [CASE_NAME_FILTER]
set -euo pipefail
cd "$(dirname "$0")/../.."
filter=${1:-}

cargo build --locked --bin roombox
tests_bin=$(cargo test --locked --lib --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$tests_bin" ] || { echo "vm suite: no unit-test binary found" >&2; exit 1; }
rm -rf target/vm/artifacts && mkdir -p target/vm/artifacts

bash tests/vm/run.sh --timeout 1200 -- env ROOMBOX_BIN="$PWD/target/debug/roombox" \
  ROOMBOX_UNIT_TESTS="$tests_bin" VM_ARTIFACTS="$PWD/target/vm/artifacts" \
  CASE_FILTER="$filter" bash tests/vm/guest-suite.sh
