#!/usr/bin/env python3
"""What redb's page cache size (`--store-cache-mb`) does to import and read speed (issue 19,
item 3), to pick its default from.

For each size (`--sizes`, MiB), in rounds that alternate the order so load from other jobs falls
on every size, on the parsed league data set of bench/scale.py (`--data DIR` reuses one):
1. Starts the fixture upstream (no latency) and the service with `--store-cache-mb SIZE` and
   `--hot-cache-mb 0` (every read goes to redb, so the page cache is what is measured), no rate
   limit, and imports the league (1,000 matches, 10,000 players): matches/s and service CPU per
   stored resource.
2. Reads through redb: the team view rendered on every GET (11,000 summaries), and GETs of
   random stored players and matches (one keep-alive connection): median/p99 ms.
3. RSS after the reads.

Usage: store_cache.py OUT.json [--sizes 8,64,256] [--rounds 2] [--data DIR] [--requests 400]
BENCH_BINARY=PATH runs another build (see common.py).
"""

import argparse
import os
import random
import sys
import time

import common
import scale


def random_gets(addr, paths, n):
    lat = []
    conn = common.keepalive(addr)
    try:
        for path in random.Random(7).choices(paths, k=n):
            t = time.perf_counter()
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path} answered {resp.status}")
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        conn.close()
    lat.sort()
    return {"requests": n, "medianMs": round(lat[len(lat) // 2], 3),
            "p99Ms": round(common.percentile(lat, 99), 3)}


def one(size, data, manifest, requests):
    work = common.tempdir(f"store-cache-{size}")
    fixture = common.start_fixture(work, latency_ms=0, data_dir=data)
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    argv = scale.service_argv(data_dir, fixture, ["--nats-port", "0", "--hot-cache-mb", "0",
                                                  "--store-cache-mb", str(size)])
    svc, _ = scale.start_timed(f"service-{size}", argv, work, data_dir)
    team_path = f"/api/teams/{manifest['teamId']}/matches?leagueId={manifest['leagueId']}"
    imp = scale.run_import(svc, team_path)
    time.sleep(2)
    view = scale.timed_gets(svc.addr, team_path, max(20, requests // 20))
    # What the import stored: the view lists its matches and players.
    _, body = common.request("GET", svc.addr, team_path, timeout=60)
    paths = [f"/api/matches/{m['matchId']}" for m in body["matches"]]
    paths += [f"/api/players/{p['accountId']}/data" for p in body["players"]]
    reads = random_gets(svc.addr, paths, requests)
    rss = scale.mib(scale.status_kb(svc.proc.pid, "VmRSS"))
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)
    out = {"storeCacheMb": size, "matchesPerS": imp["matchesPerS"],
           "cpuMsPerResource": imp["cpuMsPerResource"], "importWallS": imp["wallS"],
           "viewRenderedMedianMs": view["medianMs"], "viewRenderedP99Ms": view["p99Ms"],
           "randomReadMedianMs": reads["medianMs"], "randomReadP99Ms": reads["p99Ms"],
           "rssMiB": rss, "loadAverage": common.load_average()}
    print(f"  {size:>4} MiB: {out['matchesPerS']} matches/s, {out['cpuMsPerResource']} ms "
          f"CPU/resource; view rendered {out['viewRenderedMedianMs']} ms; random reads "
          f"{out['randomReadMedianMs']} ms (p99 {out['randomReadP99Ms']}); RSS {rss} MiB; "
          f"load {out['loadAverage']}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--sizes", default="8,64,256")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--matches", type=int, default=1000)
    ap.add_argument("--players", type=int, default=10000)
    ap.add_argument("--data", default=None)
    ap.add_argument("--requests", type=int, default=400)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = args.data or common.tempdir("store-cache-data")
    data, manifest = scale.dataset(base, args.matches, args.players)
    runs = []
    for r in range(args.rounds):
        order = sizes if r % 2 == 0 else list(reversed(sizes))
        print(f"round {r + 1}: {order}", flush=True)
        for size in order:
            runs.append(one(size, data, manifest, args.requests))
    summary = {}
    for size in sizes:
        mine = [x for x in runs if x["storeCacheMb"] == size]
        summary[str(size)] = {k: round(sum(x[k] for x in mine) / len(mine), 3)
                              for k in ("matchesPerS", "cpuMsPerResource",
                                        "viewRenderedMedianMs", "randomReadMedianMs",
                                        "randomReadP99Ms", "rssMiB")}
    common.write_json(args.out, {"binary": common.BINARY, "runs": runs, "mean": summary})
    for size, s in summary.items():
        print(f"mean {size:>4} MiB: {s}", flush=True)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
