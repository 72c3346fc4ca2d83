#!/usr/bin/env bash
# The test command: build everything, then run every test (unit and integration), and
# close with one line counting them all.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --lib --bins --tests 2>&1 | tee "$log" || status=$?
# The doctests: the sdk's examples (README, PLUGINS.md's Rust API) must compile and pass.
cargo test --workspace --locked --doc 2>&1 | tee -a "$log" || status=$?
passed=$(grep -oE 'test result: .* ([0-9]+) passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
# Tests skipped under OSTREE_BUILD_TESTS_SKIP count as passed; each said `SKIPPED <test>: ...`
# (at the start of a line, or after `test <test> ... ` when the tests run one at a time).
skipped=$( (grep -oE 'SKIPPED [A-Za-z0-9_:]+: needs ' "$log" || true) | wc -l)
if [ "$skipped" -gt 0 ]; then
  echo "skipped (OSTREE_BUILD_TESTS_SKIP=${OSTREE_BUILD_TESTS_SKIP:-}): ${skipped} of the passed tests"
fi
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
