#!/usr/bin/env bash
# Quickstart 2: runs the whole test suite against real components (nats-server, redb, warp,
# the fixture upstream over HTTP). Installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh
cargo test --all-targets "$@"
