#!/usr/bin/env bash
# Runs inside the VM (tests/vm/suite.sh starts it): every case, a summary, and a failing exit
# status if any case failed.
set -uo pipefail
cd "$(dirname "$0")/cases"
pass=() fail=()
for case in *.sh; do
  name=${case%.sh}
  [ -n "${CASE_FILTER:-}" ] && [[ "$name" != *"$CASE_FILTER"* ]] && continue
  echo "=== vm case $name"
  start=$(date +%s)
  if bash -euo pipefail "$case"; then
    pass+=("$name"); echo "--- PASS $name ($(( $(date +%s) - start )) s)"
  else
    fail+=("$name"); echo "--- FAIL $name ($(( $(date +%s) - start )) s)"
  fi
done
echo "vm cases: ${#pass[@]} passed, ${#fail[@]} failed ${fail[*]:-}"
[ ${#fail[@]} -eq 0 ] && [ ${#pass[@]} -gt 0 ]
