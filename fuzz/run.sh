#!/usr/bin/env bash
# Runs one cargo-fuzz target: fuzz/run.sh TARGET [SECONDS]
# New inputs go to fuzz/corpus/TARGET (not committed); the committed seeds in
# fuzz/seeds/TARGET are read too. Crashes land in fuzz/artifacts/TARGET.
# Needs the nightly toolchain (AddressSanitizer) and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-60}"
mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
extra=(-timeout=20)
# The scenario target runs the madsim runtime, which leaves its pending
# tasks in reference cycles when a run ends (memory of the simulator, not of
# log-core): LeakSanitizer would stop on every input. The other targets keep
# leak detection. madsim also overrides the C library's clock inside a
# simulation, which libFuzzer's per-input timer reads, so that timer reports
# nonsense (negative seconds): the target relies on madsim's own simulated
# time limit, which fails a run that livelocks.
# (-detect_leaks=0 stops libFuzzer's per-input check; ASAN_OPTIONS stops the
# one LeakSanitizer runs at exit.)
if [ "$target" = scenario ]; then
    extra=(-detect_leaks=0 -timeout=0)
    export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fi
# cargo-fuzz replaces RUSTFLAGS with its own and keeps what it is given:
# the targets link sim-harness, which needs madsim's simulation cfg.
RUSTFLAGS="--cfg madsim --cfg tokio_unstable" cargo +nightly fuzz run "$target" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -dict=fuzz/seglog.dict \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 "${extra[@]}"
