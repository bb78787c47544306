#!/usr/bin/env bash
# The fuzz crate is its own workspace, so it cannot inherit the workspace's
# lint table: it keeps a copy. This checks that the copy matches
# `[workspace.lints.*]` in ../Cargo.toml, then runs clippy on the fuzz
# targets with warnings denied (nightly, like cargo-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
table() { # file section -> the section's lines up to the next blank line
    awk -v s="[$2]" '$0 == s {on = 1; next} on && /^$/ {exit} on' "$1"
}
for kind in rust clippy; do
    want="$(table Cargo.toml "workspace.lints.$kind")"
    got="$(table fuzz/Cargo.toml "lints.$kind")"
    if [ -z "$want" ] || [ "$want" != "$got" ]; then
        echo "fuzz/Cargo.toml [lints.$kind] differs from Cargo.toml [workspace.lints.$kind]:" >&2
        diff <(echo "$want") <(echo "$got") >&2 || true
        exit 1
    fi
done
cd fuzz
RUSTFLAGS="--cfg madsim --cfg tokio_unstable" cargo +nightly clippy --bins --lib -- -D warnings
