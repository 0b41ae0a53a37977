#!/usr/bin/env bash
# Read-path benchmark (issue 9): builds the release binary, runs bench/readpath.py (ours vs nginx
# with wrk, the team view of a 300-match league, queue status; about 3-4 minutes after the build)
# and rewrites the read-path section of BENCHMARKS.md between its markers.
#
#   bench/readpath.sh              a run, shown next to the stored baseline
#   bench/readpath.sh --baseline   a run that becomes the baseline (bench/readpath-baseline.json)
#
# Needs cargo, python3 (stdlib only), nats-server, wrk and nginx (apt: wrk, nginx-light; installed
# here when missing). Loopback only; every process it starts is stopped on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export RUST_LOG="${RUST_LOG:-warn}"

BASELINE=""
case "${1:-}" in
    --baseline) BASELINE=1 ;;
    "") ;;
    *) echo "usage: bench/readpath.sh [--baseline]" >&2; exit 2 ;;
esac

apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y --no-install-recommends "$@"
}
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx-light
command -v nats-server >/dev/null || { echo "nats-server not found (apt-get install nats-server)" >&2; exit 1; }

echo "== cargo build --release"
cargo build --release --quiet

OUT="$(mktemp -t dota-bench-readpath-XXXXXX.json)"
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

echo "== read path: ours vs nginx, team view, queue status"
timeout --signal=TERM --kill-after=30 600 python3 bench/readpath.py "$OUT" &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_PID=""

if [[ -n "$BASELINE" ]]; then
    cp "$OUT" bench/readpath-baseline.json
    python3 bench/readpath_report.py BENCHMARKS.md --baseline bench/readpath-baseline.json
else
    python3 bench/readpath_report.py BENCHMARKS.md --baseline bench/readpath-baseline.json --latest "$OUT"
fi
echo "== results written to BENCHMARKS.md"
