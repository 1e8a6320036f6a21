#!/usr/bin/env bash
# Runs the box's device tests (#[ignore]d on the host) whose names contain FILTER, one at a time
# (they share the device), and fails unless every one of them ran and passed: a filter that
# matches nothing is a failure, not a silent pass.
#   ROOMBOX_UNIT_TESTS=BIN bash tests/vm/unit-tests.sh FILTER
set -euo pipefail
bin=${ROOMBOX_UNIT_TESTS:?the unit-test binary of the box}
filter=${1:?a test-name filter}
want=$("$bin" --list --ignored "$filter" | grep -c ': test$' || true)
[ "$want" -gt 0 ] || { echo "unit-tests: no device test matches '$filter'" >&2; exit 1; }
status=0
out=$("$bin" --ignored --test-threads 1 --nocapture "$filter" 2>&1) || status=$?
echo "$out"
[ "$status" -eq 0 ] && grep -q "^test result: ok. $want passed" <<<"$out" ||
  { echo "unit-tests: expected all $want tests matching '$filter' to pass" >&2; exit 1; }
echo "unit-tests: $want of $want device tests matching '$filter' passed"
