#!/usr/bin/env bash
# CI check of examples/follow_ready.rs against a live service: starts `serve --demo` on free
# ports, creates the example's durable consumer, stops the example, imports the demo team
# while it is away, then runs it again and expects every ready event of the import (the team,
# its matches and their players), each once.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q --bin dota-orchestrator --example follow_ready
bin=target/debug/dota-orchestrator
example=target/debug/examples/follow_ready
dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port)
nats=$(free_port)
"$bin" serve --demo --data-dir "$dir/data" --http-addr "127.0.0.1:$http" --nats-port "$nats" \
  --nats-conf nats.conf --demo-dir fixtures/demo >"$dir/service.log" 2>&1 &
service=$!
cleanup() { kill "$service" 2>/dev/null || true; wait "$service" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$http/readyz" || { cat "$dir/service.log"; exit 1; }

url="nats://127.0.0.1:$nats"
# Creates the durable consumer, then goes away.
"$example" --nats-url "$url" --durable ci-follower --idle-secs 1 >/dev/null
team=9517508 league=16435
curl -fsS -X POST "http://127.0.0.1:$http/api/teams/$team/matches?leagueId=$league" >/dev/null
progress="http://127.0.0.1:$http/api/teams/$team/matches?leagueId=$league&include=progress"
for _ in $(seq 1 300); do
  done=$(curl -fsS "$progress" | python3 -c 'import json,sys; p=json.load(sys.stdin)["progress"]; print(int(p["matchesTotal"]>0 and p["matchesReady"]==p["matchesTotal"] and p["playersReady"]==p["playersTotal"]))' 2>/dev/null || echo 0)
  [ "$done" = 1 ] && break
  sleep 0.2
done
[ "$done" = 1 ] || { echo "the demo import did not complete"; exit 1; }
sleep 1
expected=$(curl -fsS "$progress" | python3 -c 'import json,sys; p=json.load(sys.stdin)["progress"]; print(1 + p["matchesTotal"] + p["playersTotal"])')
# Back: everything that happened meanwhile.
"$example" --nats-url "$url" --durable ci-follower --idle-secs 2 >"$dir/events.txt"
got=$(wc -l <"$dir/events.txt")
unique=$(cut -d' ' -f2 "$dir/events.txt" | sort -u | wc -l)
teams=$(grep -c '^com.dota-orchestrator.team.ready ' "$dir/events.txt" || true)
echo "follow_ready: $got events ($unique distinct ids, $teams team.ready), expected $expected"
[ "$got" = "$expected" ] && [ "$unique" = "$expected" ] && [ "$teams" = 1 ]
