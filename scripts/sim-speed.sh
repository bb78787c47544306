#!/usr/bin/env bash
# Simulator speed, side by side: builds sim-harness at BASE (default: the
# merge base with origin/main, else HEAD~1) in its own worktree and target
# directory, next to the working tree's build, then runs the same seeds
# with each binary alternately, ROUNDS times (one campaign at a time, so
# both see the same machine), and prints seeds/s and ops/s per run and the
# median ratio new/base.
#
#   scripts/sim-speed.sh [BASE] [SEEDS] [ROUNDS]
#   scripts/sim-speed.sh c78fc64 0..3000 3
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-$(git merge-base HEAD origin/main 2>/dev/null || git rev-parse HEAD~1)}"
seeds="${2:-0..3000}"
rounds="${3:-3}"
work="${SIM_SPEED_DIR:-/tmp/sim-speed}"
mkdir -p "$work"
rev="$(git rev-parse --short "$base")"
if [ ! -x "$work/sim-harness-$rev" ]; then
    rm -rf "$work/tree-$rev"
    git worktree add --detach -f "$work/tree-$rev" "$base" >/dev/null
    (cd "$work/tree-$rev" && CARGO_TARGET_DIR="$work/target-base" cargo build --release -q -p sim-harness)
    cp "$work/target-base/release/sim-harness" "$work/sim-harness-$rev"
    git worktree remove --force "$work/tree-$rev"
fi
cargo build --release -q -p sim-harness
cp target/release/sim-harness "$work/sim-harness-new"
speed() { # binary -> "seeds/s ops/s ops"
    "$1" run --seeds "$seeds" 2>/dev/null | awk '/^speed:/ {
        for (i = 1; i <= NF; i++) { if ($i == "seeds/s,") s = $(i-1); if ($i == "ops/s") o = $(i-1); if ($i == "ops") n = $(i-1) }
        print s, o, n }'
}
ratios=()
for r in $(seq 1 "$rounds"); do
    # Alternate which goes first, so neither always runs on a cooler machine.
    if [ $((r % 2)) -eq 1 ]; then b=$(speed "$work/sim-harness-$rev"); n=$(speed "$work/sim-harness-new")
    else n=$(speed "$work/sim-harness-new"); b=$(speed "$work/sim-harness-$rev"); fi
    read -r bs bo bn <<<"$b"; read -r ns no nn <<<"$n"
    ratio=$(awk -v a="$ns" -v b="$bs" 'BEGIN { printf "%.2f", a / b }')
    ratios+=("$ratio")
    echo "round $r: base $rev $bs seeds/s ($bn ops, $bo ops/s) | new $ns seeds/s ($nn ops, $no ops/s) | new/base $ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo "seeds $seeds, $rounds rounds: median new/base seeds/s = $median"
