#!/usr/bin/env bash
# Quickstart 2: runs the whole test suite against real components (nats-server, redb, warp,
# the fixture upstream over HTTP). Installs what the tests need first. With no arguments it
# also checks and tests the TypeScript client (clients/typescript/scripts/ci.sh) against the
# binary the Rust tests just built; with arguments (a test filter) it runs only cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh
cargo test --all-targets "$@"
if [ $# -eq 0 ]; then
  echo "== clients/typescript: generated files, npm ci && npm test"
  clients/typescript/scripts/ci.sh
fi
