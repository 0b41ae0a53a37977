#!/usr/bin/env bash
# Quickstart 2: runs the whole test suite against real components (nats-server, redb, warp,
# the fixture upstream over HTTP). Installs what the tests need first. With no arguments it
# also checks and tests the TypeScript client (clients/typescript/scripts/ci.sh) against the
# binary the Rust tests just built; with arguments (a test filter) it runs only cargo test.
#
# DOTA_SOAK_MINUTES=N (CI sets 3): with no arguments, runs three checks beside the integration
# suite, on the debug binary the test build made, so they add little wall time: the chaos soak
# (bench/soak.sh, N minutes), the TypeScript client and examples/follow_ready.rs against a live
# service (scripts/follow_ready_check.sh). Their output is shown when they end; the script fails
# if the suite or any of the three failed.
set -euo pipefail
cd "$(dirname "$0")/.."
DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh
if [ $# -gt 0 ]; then
  exec cargo test --all-targets "$@"
fi
if [ -z "${DOTA_SOAK_MINUTES:-}" ]; then
  cargo test --all-targets
  echo "== clients/typescript: generated files, npm ci && npm test"
  clients/typescript/scripts/ci.sh
  exit 0
fi

cargo test --all-targets --no-run
# The binary and example the follow_ready check runs (a no-op for the suite's build).
cargo build -q --bin dota-orchestrator --example follow_ready
logs=$(mktemp -d -t dota-ci-XXXXXX)
echo "== beside the suite: bench/soak.sh (SOAK_MINUTES=$DOTA_SOAK_MINUTES, debug build), the TypeScript client and the follow_ready check; output in $logs"
SOAK_MINUTES="$DOTA_SOAK_MINUTES" DOTA_BIN="${CARGO_TARGET_DIR:-target}/debug/dota-orchestrator" \
  bench/soak.sh >"$logs/soak.log" 2>&1 &
soak=$!
clients/typescript/scripts/ci.sh >"$logs/client.log" 2>&1 &
client_job=$!
scripts/follow_ready_check.sh >"$logs/follow_ready.log" 2>&1 &
follow_job=$!
# Stops whatever is still running (the soak stops everything it started) if this script ends early.
trap 'kill -TERM "$soak" "$client_job" "$follow_job" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
suite=0
cargo test --all-targets || suite=$?
# The checks beside the suite do not depend on its result: each is waited for and reported.
client=0
wait "$client_job" || client=$?
echo "== clients/typescript: generated files, npm ci && npm test (exit $client)"
cat "$logs/client.log"
follow=0
wait "$follow_job" || follow=$?
echo "== examples/follow_ready.rs against a live service (exit $follow)"
cat "$logs/follow_ready.log"
soak_status=0
started=$SECONDS
wait "$soak" || soak_status=$?
echo "== bench/soak.sh (exit $soak_status; waited $((SECONDS - started)) s for it after the suite)"
trap - EXIT
cat "$logs/soak.log"
rm -rf "$logs"
echo "== exit codes: cargo test $suite, TypeScript client $client, follow_ready $follow, soak $soak_status"
[ "$suite" -eq 0 ] && [ "$client" -eq 0 ] && [ "$follow" -eq 0 ] && [ "$soak_status" -eq 0 ]
