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
source bench/lib.sh
bench_args "$@"

apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y --no-install-recommends "$@"
}
command -v wrk >/dev/null || apt_install wrk
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx-light

echo "== read path: ours vs nginx, team view, queue status"
bench_run readpath 600 bench/readpath.py
