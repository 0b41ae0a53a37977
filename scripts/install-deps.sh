#!/usr/bin/env bash
# Installs the system packages the service and its tests need, when missing:
# nats-server (the embedded message bus). Debian/Ubuntu only; uses sudo when not root.
set -euo pipefail

missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if [ "${DOTA_WITH_TEST_DEPS:-0}" = 1 ]; then
  # promtool validates /metrics; chromium drives the status page test.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
