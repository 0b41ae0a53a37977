#!/usr/bin/env bash
# Quickstart 2: runs the whole test suite against real components (nats-server, redb, warp,
# the fixture upstream over HTTP). Installs what the tests need first. With no arguments it
# also checks and tests the TypeScript client (clients/typescript/scripts/ci.sh) against the
# binary the Rust tests just built; with arguments (a test filter) it runs only cargo test.
#
# DOTA_SOAK_MINUTES=N (CI sets 3): with no arguments, also runs the chaos soak
# (bench/soak.sh, N minutes) on the debug binary the test build made, beside the integration
# suite and the TypeScript client, so it adds little wall time. Its output is shown when it
# ends; the script fails if the suite, the client or the soak failed.
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
soak_log=$(mktemp -t dota-soak-XXXXXX.log)
echo "== bench/soak.sh (SOAK_MINUTES=$DOTA_SOAK_MINUTES, debug build) started beside the suite; output: $soak_log"
SOAK_MINUTES="$DOTA_SOAK_MINUTES" DOTA_BIN="${CARGO_TARGET_DIR:-target}/debug/dota-orchestrator" \
  bench/soak.sh >"$soak_log" 2>&1 &
soak=$!
# Stops the soak (it stops everything it started) if this script ends early.
trap 'kill -TERM "$soak" 2>/dev/null || true; wait "$soak" 2>/dev/null || true' EXIT
suite=0
cargo test --all-targets || suite=$?
client=0
if [ "$suite" -eq 0 ]; then
  echo "== clients/typescript: generated files, npm ci && npm test"
  clients/typescript/scripts/ci.sh || client=$?
fi
soak_status=0
if [ "$suite" -eq 0 ] && [ "$client" -eq 0 ]; then
  started=$SECONDS
  wait "$soak" || soak_status=$?
  echo "== bench/soak.sh (waited $((SECONDS - started)) s for it after the suite and the client)"
else
  kill -TERM "$soak" 2>/dev/null || true
  wait "$soak" 2>/dev/null || soak_status=$?
  echo "== bench/soak.sh (stopped: the suite or the client failed)"
fi
trap - EXIT
cat "$soak_log"
rm -f "$soak_log"
echo "== exit codes: cargo test $suite, TypeScript client $client, soak $soak_status"
[ "$suite" -eq 0 ] && [ "$client" -eq 0 ] && [ "$soak_status" -eq 0 ]
