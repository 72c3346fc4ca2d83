#!/usr/bin/env bash
# The test command: build everything, then run every test (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
cargo test --workspace --locked
