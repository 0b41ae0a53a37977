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
source bench/lib.sh
bench_args "$@"

echo "== throughput: scenarios ${BENCH_ONLY:-a,b,c}"
bench_run throughput 900 bench/throughput.py --only "${BENCH_ONLY:-a,b,c}"
