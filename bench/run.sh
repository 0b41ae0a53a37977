#!/usr/bin/env bash
# Builds the release binary and runs every benchmark, then rewrites the results section of
# BENCHMARKS.md. Loopback only; each driver stops what it starts, and this script stops the
# running driver (which then stops its children) on exit or Ctrl-C. Not part of CI.
#
#   bench/run.sh                 all benchmarks (about 4-6 minutes after the build)
#   BENCH_SKIP_TIGHT=1 bench/run.sh   skip 1b (the run that waits for the next calendar minute)
#
# Needs cargo, python3 (stdlib only) and nats-server on PATH. CARGO_TARGET_DIR is honoured.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Quiet service logs (they go to per-run files in temp dirs anyway).
export RUST_LOG="${RUST_LOG:-warn}"

RESULTS="$(mktemp -d -t dota-bench-results-XXXXXX)"
DRIVER_PID=""
cleanup() {
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    rm -rf "$RESULTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v nats-server >/dev/null || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }

echo "== cargo build --release"
cargo build --release --quiet

# Runs one driver in the background (so the trap can stop it), bounded by `timeout`.
drive() {
    local limit="$1"; shift
    timeout --signal=TERM --kill-after=30 "$limit" python3 "$@" &
    DRIVER_PID=$!
    wait "$DRIVER_PID"
    DRIVER_PID=""
}

start=$(date +%s)
echo "== 1. team import vs. rate budget"
drive 300 bench/import_time.py "$RESULTS/import.json" --runs 5 --opendota-per-min 60 --latency-ms 50
if [[ -z "${BENCH_SKIP_TIGHT:-}" ]]; then
    echo "== 1b. team import with a budget smaller than the import"
    drive 200 bench/import_time.py "$RESULTS/import_tight.json" --runs 1 --opendota-per-min 20 --latency-ms 50
fi
echo "== 2. API latency"
drive 240 bench/api_latency.py "$RESULTS/latency.json" --requests 2000
echo "== 3. dedup under concurrency"
drive 180 bench/dedup.py "$RESULTS/dedup.json" --runs 5 --clients 50

python3 bench/report.py "$RESULTS" BENCHMARKS.md
echo "== done in $(( $(date +%s) - start )) s; results written to BENCHMARKS.md"
