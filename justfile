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

# Throughput benchmarks, side by side with raw std::fs loops.
bench *ARGS:
    cargo bench -p log-core --bench throughput -- {{ARGS}}

# The operator CLI on a log directory, e.g. `just seglog verify /var/lib/app/log`.
seglog *ARGS:
    cargo run --release -p log-core --features cli --bin seglog -- {{ARGS}}
