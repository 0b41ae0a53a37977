#!/usr/bin/env bash
# 1,000 concurrent pollers for 60 s (issue 8): builds the release binary and runs
# bench/pollers.py, which starts `serve --demo` and three wrk processes (apt-get install wrk).
# Exits 1 on any unexpected status or socket error.
#
#   bench/pollers.sh [OUT.json] [--connections N] [--duration S]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUST_LOG="${RUST_LOG:-warn}"
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }
# 1,000 client sockets here plus 1,000 on the service side.
ulimit -n 8192 2>/dev/null || true
cargo build --release --quiet
OUT="${1:-/dev/stdout}"; shift || true
exec timeout --signal=TERM --kill-after=30 300 python3 bench/pollers.py "$OUT" "$@"
