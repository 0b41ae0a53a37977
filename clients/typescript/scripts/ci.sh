#!/usr/bin/env bash
# The TypeScript client's checks, as CI runs them (scripts/test.sh calls this after the Rust
# suite, which has built target/debug/dota-orchestrator):
#   npm ci                    the locked dependencies (package-lock.json)
#   scripts/generate.sh --check   openapi.json and src/schema.d.ts are what the current code generates
#   npm test                  build, tsc --noEmit (examples/usage.tsx included), vitest against a live service
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null 2>&1 || { echo "npm not found: the TypeScript client needs Node 20 and npm" >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
scripts/generate.sh --check
npm test
