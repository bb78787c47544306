#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30), installing
# cargo-fuzz if missing; fails on the first crash. `just fuzz-smoke` and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
targets=$(cargo fuzz list | grep -v '^gen-corpus$')
for t in $targets; do
    echo "== fuzz $t for ${seconds}s"
    bash fuzz/run.sh "$t" "$seconds"
done
