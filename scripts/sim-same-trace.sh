#!/usr/bin/env bash
# Do two simulator binaries take the same steps? Replays seeds START..END
# (every STEP-th) with each and compares the trace hashes; a refactor that
# must keep behaviour shows "diffs: 0".
#
#   scripts/sim-same-trace.sh OLD_BINARY NEW_BINARY [START END STEP]
#   scripts/sim-same-trace.sh /tmp/sim-speed/sim-harness-c78fc64 target/release/sim-harness 0 420 7
set -euo pipefail
old=$1; new=$2; start=${3:-0}; end=${4:-420}; step=${5:-7}
diffs=0
for seed in $(seq "$start" "$step" "$end"); do
    a=$("$old" replay --seed "$seed" 2>/dev/null | grep '^trace-hash' || true)
    b=$("$new" replay --seed "$seed" 2>/dev/null | grep '^trace-hash' || true)
    if [ "$a" != "$b" ]; then
        echo "seed $seed: $a vs $b"
        diffs=$((diffs + 1))
    fi
done
echo "diffs: $diffs"
