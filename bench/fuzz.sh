#!/usr/bin/env bash
# Fuzz run of the HTTP API (issue 8): installs schemathesis into bench/.venv (git-ignored, never
# system-wide) on first use, builds the release binary, and runs bench/fuzz.py against a live
# `serve --demo`. Prints the request count and the 5xx count; exits 1 on any 5xx.
#
#   bench/fuzz.sh [OUT.json] [fuzz.py options, e.g. --max-examples 50 --seed 7]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUST_LOG="${RUST_LOG:-warn}"
VENV="${BENCH_VENV:-bench/.venv}"
if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi
cargo build --release --quiet
OUT="${1:-/dev/stdout}"; shift || true
exec timeout --signal=TERM --kill-after=30 600 python3 bench/fuzz.py "$OUT" \
    --schemathesis "$VENV/bin/schemathesis" "$@"
