#!/usr/bin/env bash
# Regenerates the client's generated files from the current Rust code:
#   openapi.json     `dota-orchestrator openapi`: the document `GET /api/openapi.json` serves
#   src/schema.d.ts  openapi-typescript 7 over that document
# With --check, generates into a temp dir and fails (exit 1, with the diff) when the committed
# files differ, so the client cannot drift from the server. CI runs the check.
# Needs cargo (builds the binary if it is not current) and `npm ci` done in this directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# `cargo run` rebuilds the binary when the code changed, so the document is the current one.
(cd "$root" && cargo run --quiet --bin dota-orchestrator -- openapi) >"$out/openapi.json"
"$here/node_modules/.bin/openapi-typescript" "$out/openapi.json" \
  --output "$out/schema.d.ts" >/dev/null
# openapi-typescript prints a banner comment naming no path or version: the output depends only
# on the document and the pinned openapi-typescript (package-lock.json).

if [ "$check" = 1 ]; then
  status=0
  for f in openapi.json src/schema.d.ts; do
    if ! diff -u "$here/$f" "$out/$(basename "$f")"; then
      echo "clients/typescript/$f differs from what the current code generates" >&2
      status=1
    fi
  done
  if [ "$status" != 0 ]; then
    echo "run clients/typescript/scripts/generate.sh and commit the result" >&2
    exit 1
  fi
  echo "generated files are current"
else
  cp "$out/openapi.json" "$here/openapi.json"
  cp "$out/schema.d.ts" "$here/src/schema.d.ts"
  echo "wrote clients/typescript/openapi.json and clients/typescript/src/schema.d.ts"
fi
