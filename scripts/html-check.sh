#!/usr/bin/env bash
# The replay picture, checked the way a person would look at it: writes
# `replay --html` for a planted failure, loads it in headless Chromium and
# fails unless the page's script ran to its end (it sets `data-ready` on
# the body to the number of marks) — a script error leaves it at 0. With
# an argument, also writes a screenshot there.
#
#   scripts/html-check.sh [SCREENSHOT.png]
#
# SIM_HARNESS=path runs that sim-harness binary instead of building one
# with `cargo run --release` (CI passes the one `cargo test` built).
set -euo pipefail
cd "$(dirname "$0")/.."
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "html-check: no Chromium found; install it (Debian: apt-get install -y chromium)" >&2
    exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The replay fails (the canary is caught): exit code 1 is expected.
set +e
if [ -n "${SIM_HARNESS:-}" ]; then
    "$SIM_HARNESS" replay --seed 24 --canary sync-noop --html "$out/replay.html" >/dev/null
else
    cargo run --release -q -p sim-harness -- replay --seed 24 --canary sync-noop --html "$out/replay.html" >/dev/null
fi
code=$?
set -e
if [ "$code" -ne 1 ]; then
    echo "html-check: the canary replay exited $code, expected 1 (caught)" >&2
    exit 1
fi
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars)
ready=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$out/replay.html" 2>/dev/null \
    | grep -o 'data-ready="[0-9]*"' | head -n 1 | grep -o '[0-9]\+' || true)
if [ -z "$ready" ] || [ "$ready" -eq 0 ]; then
    echo "html-check: the page's script did not finish (data-ready=${ready:-missing})" >&2
    exit 1
fi
echo "html-check: the page loaded in $(basename "$browser") and its script ran ($ready marks)"
if [ $# -ge 1 ]; then
    timeout 120 "$browser" "${flags[@]}" --window-size=1400,700 --screenshot="$1" "file://$out/replay.html" 2>/dev/null
    echo "html-check: screenshot in $1"
fi
