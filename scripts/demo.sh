#!/usr/bin/env bash
# Quickstart 1: runs dota-orchestrator offline in demo mode (embedded nats-server, bundled
# fixture data). Open http://127.0.0.1:8080/ and try the curl examples in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
exec "${CARGO_TARGET_DIR:-target}/release/dota-orchestrator" serve --demo --data-dir ./data/demo "$@"
