#!/usr/bin/env bash
# Installs the system packages the service and its tests need, when missing:
# nats-server (the embedded message bus); with DOTA_WITH_TEST_DEPS=1 also what only tests use
# (promtool, chromium, openapi-spec-validator). Debian/Ubuntu only; uses sudo when not root.
set -euo pipefail

missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if [ "${DOTA_WITH_TEST_DEPS:-0}" = 1 ]; then
  # promtool validates /metrics; chromium drives the status page test.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # openapi-spec-validator checks /api/openapi.json; Debian does not package it, so it comes
  # from PyPI into a venv (which needs python3-venv).
  if ! command -v openapi-spec-validator >/dev/null 2>&1; then
    python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    want_spec_validator=1
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${want_spec_validator:-0}" = 1 ]; then
  echo "installing: openapi-spec-validator (PyPI)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  venv=/opt/dota-orchestrator/openapi-spec-validator
  $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q openapi-spec-validator==0.9.0
  $sudo ln -sf "$venv/bin/openapi-spec-validator" /usr/local/bin/openapi-spec-validator
fi
