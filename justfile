# Command runner for the seglog workspace. `just --list` shows every recipe.
# Simulation runs never set RUSTFLAGS: that would replace .cargo/config.toml's
# `--cfg madsim` and silently switch madsim to std mode.

default:
    @just --list

# The one gate: formatting, lints with warnings denied, every test.
check: fmt-check clippy test

fmt-check:
    cargo fmt --all -- --check

clippy:
    cargo clippy --workspace --all-targets -- -D warnings

# The fuzz crate (its own workspace): the workspace's lint table, copied and
# checked, and clippy with warnings denied (nightly).
fuzz-lint:
    bash fuzz/lint.sh

# Every test of the workspace (the README's test command).
test:
    cargo test --workspace

# The main job: a simulation campaign against the real log.
sim SEEDS="0..1000":
    cargo run --release -p sim-harness -- run --seeds {{SEEDS}}

# Replay one seed with its timeline and trace hash.
replay SEED:
    cargo run --release -p sim-harness -- replay --seed {{SEED}}

# Prove the checker's power: every planted lie must be caught.
canaries SEEDS="0..2000":
    cargo run --release -p sim-harness -- canaries --seeds {{SEEDS}}

# The cluster simulation: openraft on seglog-raft, 3 nodes, faulty disks and network.
cluster SEEDS="0..2000":
    cargo run --release -p sim-harness -- cluster --seeds {{SEEDS}}

# Replay one cluster seed with its timeline and trace hash.
cluster-replay SEED:
    cargo run --release -p sim-harness -- cluster --replay {{SEED}}

# Every cluster canary (a flush before the fsync, a forgotten vote, duplicated acks) must be caught.
cluster-canaries SEEDS="0..300":
    cargo run --release -p sim-harness -- cluster --canaries --seeds {{SEEDS}}

# Fuzz one cargo-fuzz target (nightly + cargo-fuzz; see fuzz/README.md).
fuzz TARGET SECONDS="60":
    bash fuzz/run.sh {{TARGET}} {{SECONDS}}

# Every fuzz target briefly (installs cargo-fuzz if missing); CI runs this.
fuzz-smoke SECONDS="30":
    bash fuzz/smoke.sh {{SECONDS}}

# Three openraft nodes on three log directories; a follower restarts from its log.
raft-example DIR="":
    cargo run -p seglog-raft --example cluster -- {{DIR}}

# Throughput benchmarks, side by side with raw std::fs loops.
bench *ARGS:
    cargo bench -p seglog-core --bench throughput -- {{ARGS}}

# Group commit on real tokio: 1-64 producers vs fsync-per-append and raw.
bench-group *ARGS:
    cargo bench -p seglog-core --bench group_commit -- {{ARGS}}

# The operator CLI on a log directory, e.g. `just seglog verify /var/lib/app/log`.
seglog *ARGS:
    cargo run --release -p seglog-core --features cli --bin seglog -- {{ARGS}}

# seglog next to commitlog, okaywal and raft-engine (peer-bench/README.md).
peer-bench *ARGS:
    cd peer-bench && cargo run --release -- {{ARGS}}

# The log-core examples (queue partition, event store, key compaction).
examples:
    for e in queue_partition event_store key_compaction; do cargo run -p seglog-core --example $e; done
