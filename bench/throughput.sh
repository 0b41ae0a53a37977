#!/usr/bin/env bash
# Throughput benchmark (issue 10): builds the release binary, runs bench/throughput.py
# (scenarios a, b, c; about 5 minutes: b and c wait for calendar minutes) and rewrites the
# throughput section of BENCHMARKS.md between its markers, next to the stored baseline.
#
#   bench/throughput.sh              a run, shown next to bench/throughput-baseline.json
#   bench/throughput.sh --baseline   a run that becomes the baseline
#   BENCH_ONLY=a,c bench/throughput.sh   some scenarios only
#
# Needs cargo, python3 (stdlib only) and nats-server. Loopback only; every process it starts
# is stopped on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUST_LOG="${RUST_LOG:-warn}"

BASELINE=""
case "${1:-}" in
    --baseline) BASELINE=1 ;;
    "") ;;
    *) echo "usage: bench/throughput.sh [--baseline]" >&2; exit 2 ;;
esac
command -v nats-server >/dev/null || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }

echo "== cargo build --release"
cargo build --release --quiet

OUT="$(mktemp -t dota-bench-throughput-XXXXXX.json)"
DRIVER_PID=""
cleanup() {
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    rm -f "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== throughput: scenarios ${BENCH_ONLY:-a,b,c}"
timeout --signal=TERM --kill-after=30 900 python3 bench/throughput.py "$OUT" --only "${BENCH_ONLY:-a,b,c}" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=""

if [[ -n "$BASELINE" ]]; then
    cp "$OUT" bench/throughput-baseline.json
    python3 bench/throughput_report.py BENCHMARKS.md --baseline bench/throughput-baseline.json
else
    python3 bench/throughput_report.py BENCHMARKS.md --baseline bench/throughput-baseline.json --latest "$OUT"
fi
echo "== results written to BENCHMARKS.md"
