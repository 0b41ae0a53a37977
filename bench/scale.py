#!/usr/bin/env python3
"""Scale and cost benchmark (issue 19): what a big league costs in disk, memory and CPU, and how
long a restart takes with many resources stored. Runs the release binary (BENCH_BINARY, so an
old and a new build can be compared); every process started here is stopped on exit (common.py).
Three parts:

  league   A team import of a 1,000-match league with *parsed-size* match bodies
           (bench/gen_league.py --parsed: ~290 KB of compact JSON each) and its 10,000 players,
           `--store redb`, with no rate limit (OpenDota and Dotabuff budgets raised far above
           what the machine can do) against the fixture upstream with no latency. Reported:
           dota.redb after the import against the plain and gzip-6 bytes of the bodies (its
           length and the disk it takes, sampled during the import too, and after a clean
           stop: redb lengthens the file ahead of use, a hole until written); the
           service's RSS (/proc/PID/status) 2 s and 12 s after the import, and peak RSS;
           hot cache bytes (/metrics); service CPU seconds (/proc/PID/stat utime+stime over
           the import) per stored resource; matches/s; then, keep-alive sequential GETs:
           the team view (cached rendering, plain and gzip), `?include=progress`,
           /api/queue/status; then restarts (SIGTERM, start, poll /readyz every 10 ms) and,
           on a restart with `--hot-cache-mb 0`, the team view rendered from the summaries
           on every GET.
  nats     The first N (300) matches of the same data set on one `--store nats` instance of a
           3-node R3 cluster (nats-server from .tools, as scripts/cluster.sh): JetStream bytes
           per node (/jsz `storage` and the node's store dir), the instance's redb replica,
           RSS, restart to ready and to serving the complete team view.
  startup  Start-up time with 10k, 100k and 1M stored resources (small synthetic bodies written
           by examples/fill_store.rs through the store's bulk writer): start -> /readyz 200,
           median of 3 restarts, and RSS once ready.

Usage: scale.py OUT.json [--only league,nats,startup] [--matches 1000] [--nats-matches 300]
                         [--data DIR] [--startup 10000,100000,1000000] [--requests 300]
                         [--service-arg=--flag=value ...]
`--data DIR` keeps the generated data sets there (made once, reused by later runs);
`--service-arg` adds a flag to every service started (e.g. a new build's `--store-cache-mb`).
"""

import argparse
import gzip
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import common
import gen_league
import scaleout

TICKS = os.sysconf("SC_CLK_TCK")
# Far above what 2 cores can use: the import runs as fast as the service can store.
UNLIMITED = ["--opendota-rate-limit-per-min", "100000000", "--opendota-daily-limit",
             "2000000000", "--dotabuff-rate-limit-per-min", "100000000"]
IMPORT_TIMEOUT_S = 1800
READY_TIMEOUT_S = 120
POLL_S = 0.25
SETTLE_S = 10  # after the 2 s: RSS again, "settled"
RESTARTS = 3
FILL = os.environ.get("BENCH_FILL", os.path.join(common.TARGET, "release", "examples",
                                                  "fill_store"))


# ---- /proc and /metrics -------------------------------------------------------------------

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def mib(kb):
    return round(kb / 1024, 1) if kb is not None else None


def children_of(pid):
    out = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
        except OSError:
            continue
    return out


def metric(addr, name):
    conn = common.keepalive(addr)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    total = None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


# ---- data ---------------------------------------------------------------------------------

def dataset(base, matches, players):
    """The parsed league data set in `base` (made once, reused when its manifest matches)."""
    data = os.path.join(base, f"parsed-{matches}")
    path = os.path.join(data, "manifest.json")
    if os.path.exists(path):
        with open(path) as f:
            manifest = json.load(f)
        if manifest.get("parsed") and manifest["matches"] == matches \
                and manifest["players"] == players:
            return data, manifest
    print(f"  generating {matches} parsed matches + {players} players into {data}", flush=True)
    return data, gen_league.generate(data, matches, players, parsed=True)


def body_bytes(data, manifest):
    """Plain and gzip-6 bytes of the league's bodies (matches and players), as stored."""
    out = {"matchPlain": 0, "matchGzip6": 0, "playerPlain": 0, "playerGzip6": 0}
    for kind, sub in (("match", "matches"), ("player", "players")):
        d = os.path.join(data, "opendota", sub)
        for name in os.listdir(d):
            ident = name[:-5]
            if ident == manifest["largeMatchId"] or (kind == "player" and int(ident) >= 330_000_000):
                continue  # the wrk bodies, not part of the league
            with open(os.path.join(d, name), "rb") as f:
                raw = f.read()
            out[kind + "Plain"] += len(raw)
            out[kind + "Gzip6"] += len(gzip.compress(raw, 6, mtime=0))
    out["plain"] = out["matchPlain"] + out["playerPlain"]
    out["gzip6"] = out["matchGzip6"] + out["playerGzip6"]
    return out


# ---- service ------------------------------------------------------------------------------

def service_argv(data_dir, fixture, extra):
    return [common.BINARY, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
            "--opendota-url", f"http://{fixture.addr}/opendota",
            "--dotabuff-url", f"http://{fixture.addr}/dotabuff", *UNLIMITED, *extra]


def start_timed(name, argv, work, data_dir):
    """Starts a service and returns (child, seconds from spawn to /readyz 200)."""
    t0 = time.monotonic()
    svc = common.Child(name, argv, os.path.join(work, f"{name}.log"), data_dir=data_dir)
    deadline = t0 + READY_TIMEOUT_S
    while common.request("GET", svc.addr, "/readyz", timeout=2)[0] != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: not ready after {READY_TIMEOUT_S} s")
        time.sleep(0.01)
    return svc, time.monotonic() - t0


def stop_timed(svc):
    t0 = time.monotonic()
    svc.stop()
    return time.monotonic() - t0


def progress(addr, path):
    status, body = common.request("GET", addr, f"{path}&include=progress", timeout=30)
    return (body or {}).get("progress") if status == 200 else None


def complete(p):
    return bool(p) and p["matchesTotal"] > 0 and p["matchesReady"] == p["matchesTotal"] \
        and p["playersReady"] + p["failed"] >= p["playersTotal"]


def file_bytes(path):
    """A file's length and the disk it takes (allocated blocks: what `du` shows). redb sets a
    longer length ahead of use (a hole until written), so the two differ while it runs."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_blocks * 512


def run_import(svc, path, redb=None):
    """POSTs the import and polls its progress until complete: wall and CPU, the time the last
    match was ready, and RSS (and, given `redb`, its length and disk) samples by resources
    stored."""
    pid = svc.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    status, _ = common.request("POST", svc.addr, path)
    if status not in (200, 202):
        raise RuntimeError(f"POST {path} answered {status}")
    matches_at, samples, p = None, [], None
    while time.monotonic() - t0 < IMPORT_TIMEOUT_S:
        p = progress(svc.addr, path)
        now = time.monotonic() - t0
        if p:
            sample = {"s": round(now, 2), "resources": p["matchesReady"] + p["playersReady"],
                      "rssMiB": mib(status_kb(pid, "VmRSS"))}
            if redb:
                sample["redbBytes"], sample["redbDiskBytes"] = file_bytes(redb)
            samples.append(sample)
            if matches_at is None and p["matchesTotal"] and p["matchesReady"] == p["matchesTotal"]:
                matches_at = now
        if complete(p):
            break
        time.sleep(POLL_S)
    else:
        raise TimeoutError(f"import not complete after {IMPORT_TIMEOUT_S} s: {p}")
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    stored = p["matchesReady"] + p["playersReady"] + 1  # + the team record
    return {"wallS": round(wall, 2), "matchesReadyS": round(matches_at or wall, 2),
            "matchesPerS": round(p["matchesTotal"] / (matches_at or wall), 1),
            "resourcesPerS": round(stored / wall, 1), "storedResources": stored,
            "serviceCpuS": round(cpu, 2), "cpuMsPerResource": round(cpu * 1000 / stored, 3),
            "progress": p, "rssAt": rss_at(samples), "samples": samples}


def rss_at(samples):
    """RSS at the first sample with at least 1k and 10k resources stored."""
    out = {}
    for n in (1000, 10000):
        hit = next((s for s in samples if s["resources"] >= n), None)
        out[str(n)] = hit and hit["rssMiB"]
    return out


def memory(svc):
    pid = svc.proc.pid
    out = {"rssMiB": mib(status_kb(pid, "VmRSS")), "peakRssMiB": mib(status_kb(pid, "VmHWM")),
           "hotCacheBytes": metric(svc.addr, "dota_hot_cache_bytes"),
           "hotCacheCapacityBytes": metric(svc.addr, "dota_hot_cache_capacity_bytes"),
           "storeCacheCapacityBytes": metric(svc.addr, "dota_store_cache_capacity_bytes")}
    nats = [c for c in children_of(pid) if b"nats-server" in open(f"/proc/{c}/cmdline", "rb").read()]
    if nats:
        out["embeddedNatsRssMiB"] = mib(status_kb(nats[0], "VmRSS"))
    return out


def timed_gets(addr, path, n, headers=None, warmup=10):
    """Sequential GETs on one keep-alive connection: median/p90/p99 in ms and the body size."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    lat, size = [], None
    try:
        for i in range(warmup + n):
            t = time.perf_counter()
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            dt = (time.perf_counter() - t) * 1000
            if resp.status != 200:
                raise RuntimeError(f"GET {path} answered {resp.status}: {body[:200]!r}")
            size = len(body)
            if i >= warmup:
                lat.append(dt)
    finally:
        conn.close()
    return {"path": path, "headers": headers or {}, "requests": len(lat), "bodyBytes": size,
            "medianMs": round(statistics.median(lat), 3),
            "p90Ms": round(common.percentile(lat, 90), 3),
            "p99Ms": round(common.percentile(lat, 99), 3)}


def latencies(addr, team_path, n, cached=True):
    gz = {"Accept-Encoding": "gzip"}
    out = {"teamView": timed_gets(addr, team_path, n),
           "teamViewGzip": timed_gets(addr, team_path, n, gz),
           "teamProgress": timed_gets(addr, team_path + "&include=progress", n),
           "queueStatus": timed_gets(addr, "/api/queue/status", n)}
    if not cached:
        del out["teamViewGzip"], out["queueStatus"]
    for k, v in out.items():
        print(f"    {k:13} median {v['medianMs']:8.3f} ms  p99 {v['p99Ms']:8.3f} ms  "
              f"{v['bodyBytes']} B", flush=True)
    return out


def restarts(name, argv, work, data_dir, team_path, svc):
    """Stops `svc`, then starts and stops the service RESTARTS times: seconds to /readyz 200
    and to serving the complete team view. Returns (last started child, results)."""
    runs = []
    for i in range(RESTARTS):
        stop_s = stop_timed(svc)
        t0 = time.monotonic()
        svc, ready = start_timed(f"{name}-r{i}", argv, work, data_dir)
        common.wait_until(lambda: complete(progress(svc.addr, team_path)), READY_TIMEOUT_S,
                          "the team view after a restart", interval_s=0.01)
        runs.append({"stopS": round(stop_s, 3), "readyS": round(ready, 3),
                     "servingViewS": round(time.monotonic() - t0, 3)})
    print(f"    restarts: ready {[r['readyS'] for r in runs]} s, serving the view "
          f"{[r['servingViewS'] for r in runs]} s", flush=True)
    return svc, {"runs": runs, "medianReadyS": statistics.median(r["readyS"] for r in runs),
                 "medianServingViewS": statistics.median(r["servingViewS"] for r in runs)}


# ---- parts --------------------------------------------------------------------------------

def league(args, data, manifest):
    work = common.tempdir("scale-league")
    fixture = common.start_fixture(work, latency_ms=0, data_dir=data)
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    argv = service_argv(data_dir, fixture, ["--nats-port", "0", *args.service_arg])
    svc, ready = start_timed("service", argv, work, data_dir)
    team_path = f"/api/teams/{manifest['teamId']}/matches?leagueId={manifest['leagueId']}"
    print(f"  import of {manifest['matches']} matches + {manifest['players']} players "
          f"(ready in {ready:.2f} s)", flush=True)
    redb_path = os.path.join(data_dir, "dota.redb")
    imp = run_import(svc, team_path, redb_path)
    time.sleep(2)  # let the last writes and snapshots settle
    mem = memory(svc)
    redb, redb_disk = file_bytes(redb_path)
    # And once settled: what the allocator keeps of the import's bursts after a while.
    time.sleep(SETTLE_S)
    mem["settledRssMiB"] = mib(status_kb(svc.proc.pid, "VmRSS"))
    stats = common.fixture_stats(fixture)
    print(f"    {imp['wallS']} s, {imp['matchesPerS']} matches/s, {imp['cpuMsPerResource']} ms "
          f"CPU/resource; redb {redb / 2**20:.1f} MiB long, {redb_disk / 2**20:.1f} MiB on "
          f"disk; RSS {mem['rssMiB']} MiB (peak {mem['peakRssMiB']}, {mem['settledRssMiB']} "
          f"{SETTLE_S + 2} s after), hot cache "
          f"{mem['hotCacheBytes']} B", flush=True)
    lat = latencies(svc.addr, team_path, args.requests)
    svc, rs = restarts("service", argv, work, data_dir, team_path, svc)
    # After clean stops (the restarts): redb truncates what it grew ahead of use.
    stopped, stopped_disk = file_bytes(redb_path)
    # The view rendered from the summaries on every GET: no hot cache to keep a rendering.
    stop_timed(svc)
    cold_argv = argv + ["--hot-cache-mb", "0"]
    svc, _ = start_timed("service-nohot", cold_argv, work, data_dir)
    print("    with --hot-cache-mb 0 (the view rendered on every GET):", flush=True)
    rendered = latencies(svc.addr, team_path, max(30, args.requests // 5), cached=False)
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)
    return {"import": imp, "memory": mem, "redbBytes": redb, "redbDiskBytes": redb_disk,
            "redbAfterRestartsBytes": stopped, "redbAfterRestartsDiskBytes": stopped_disk,
            "upstream": {"opendota": common.opendota_calls(stats),
                         "dotabuff": common.dotabuff_calls(stats),
                         "rateLimited": stats.get("rateLimited", 0)},
            "latency": lat, "renderedEveryGet": rendered, "restart": rs}


def nats(args, data, manifest):
    server, version = scaleout.find_server()
    work = common.tempdir("scale-nats")
    cluster = scaleout.Cluster(os.path.join(work, "cluster"), server)
    fixture = common.start_fixture(work, latency_ms=0, data_dir=data)
    data_dir = os.path.join(work, "i0")
    os.makedirs(data_dir)
    argv = service_argv(data_dir, fixture, ["--store", "nats", "--nats-url", cluster.url,
                                            "--nats-replicas", "3", *args.service_arg])
    svc, ready = start_timed("i0", argv, work, data_dir)
    team_path = f"/api/teams/{manifest['teamId']}/matches?leagueId={manifest['leagueId']}"
    print(f"  --store nats: import of {manifest['matches']} matches + {manifest['players']} "
          f"players, nats-server {version} (ready in {ready:.2f} s)", flush=True)
    imp = run_import(svc, team_path)
    time.sleep(3)  # replication and the replica's apply settle
    mem = memory(svc)
    nodes = []
    for i, port in enumerate(cluster.monitor):
        _, jsz = common.request("GET", f"127.0.0.1:{port}", "/jsz", timeout=5)
        nodes.append({"jszStorageBytes": (jsz or {}).get("storage"),
                      "storeDirBytes": dir_bytes(os.path.join(work, "cluster", f"n{i}"))})
    redb, redb_disk = file_bytes(os.path.join(data_dir, "dota.redb"))
    print(f"    {imp['wallS']} s, {imp['matchesPerS']} matches/s; JetStream per node "
          f"{[round(n['jszStorageBytes'] / 2**20, 1) for n in nodes]} MiB; replica redb "
          f"{redb / 2**20:.1f} MiB long, {redb_disk / 2**20:.1f} MiB on disk; RSS "
          f"{mem['rssMiB']} MiB", flush=True)
    lat = latencies(svc.addr, team_path, args.requests)
    svc, rs = restarts("i0", argv, work, data_dir, team_path, svc)
    svc.stop()
    fixture.stop()
    cluster.stop()
    common.remove_tempdir(work)
    return {"natsServer": version, "import": imp, "memory": mem, "nodes": nodes,
            "replicaRedbBytes": redb, "replicaRedbDiskBytes": redb_disk, "latency": lat,
            "restart": rs}


def startup(args, counts):
    if not os.access(FILL, os.X_OK):
        raise RuntimeError(f"{FILL} missing: cargo build --release --example fill_store")
    work = common.tempdir("scale-startup")
    fixture = common.start_fixture(work, latency_ms=0)
    out = []
    for n in counts:
        data_dir = os.path.join(work, f"fill-{n}")
        filled = json.loads(subprocess.run([FILL, data_dir, str(n)], check=True,
                                           capture_output=True, text=True).stdout)
        argv = service_argv(data_dir, fixture, ["--nats-port", "0", *args.service_arg])
        runs, rss, stops = [], [], []
        for i in range(RESTARTS):
            svc, ready = start_timed(f"start-{n}-{i}", argv, work, data_dir)
            rss.append(mib(status_kb(svc.proc.pid, "VmRSS")))
            runs.append(round(ready, 3))
            stops.append(round(stop_timed(svc), 3))
        row = {"resources": n, "fillS": filled["seconds"], "redbBytes": filled["fileBytes"],
               "readyS": runs, "medianReadyS": statistics.median(runs),
               "rssWhenReadyMiB": statistics.median(rss), "rssEachMiB": rss, "stopS": stops}
        print(f"  {n:>8} resources: redb {filled['fileBytes'] / 2**20:.0f} MiB, ready "
              f"{runs} s, RSS {rss} MiB, stop {stops} s", flush=True)
        out.append(row)
        shutil.rmtree(data_dir, ignore_errors=True)
    fixture.stop()
    common.remove_tempdir(work)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--only", default="league,nats,startup")
    ap.add_argument("--matches", type=int, default=1000)
    ap.add_argument("--nats-matches", type=int, default=300)
    ap.add_argument("--data", default=None, help="keep the generated data sets here")
    ap.add_argument("--startup", default="10000,100000,1000000")
    ap.add_argument("--requests", type=int, default=300, help="GETs per latency series")
    ap.add_argument("--service-arg", action="append", default=[],
                    help="an extra flag for every service started (repeatable)")
    args = ap.parse_args()
    if not 1 <= args.matches <= 1000 or not 1 <= args.nats_matches <= args.matches:
        sys.exit("--matches must be 1..1000 (50 Dotabuff pages), --nats-matches 1..--matches")
    started = time.monotonic()
    base = args.data or common.tempdir("scale-data")
    parts = args.only.split(",")
    result = {"binary": common.BINARY, "params": vars(args),
              "load": {"start": common.load_average()}}
    if "league" in parts:
        data, manifest = dataset(base, args.matches, args.matches * 10)
        result["league"] = {"dataset": manifest, "bodies": body_bytes(data, manifest)}
        print(f"scale league: bodies {result['league']['bodies']}", flush=True)
        result["league"] |= league(args, data, manifest)
    if "nats" in parts:
        data, manifest = dataset(base, args.nats_matches, args.nats_matches * 10)
        result["nats"] = {"dataset": manifest, "bodies": body_bytes(data, manifest)}
        print(f"scale nats: bodies {result['nats']['bodies']}", flush=True)
        result["nats"] |= nats(args, data, manifest)
    if "startup" in parts:
        print("scale startup: fill, then start -> /readyz", flush=True)
        result["startup"] = startup(args, [int(n) for n in args.startup.split(",")])
    result["load"]["end"] = common.load_average()
    result["seconds"] = round(time.monotonic() - started, 1)
    common.write_json(args.out, result)
    print(f"scale: done in {result['seconds']} s -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
