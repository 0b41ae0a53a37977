#!/usr/bin/env python3
"""Team view GETs while *other* resources are being written (issue 19, item 4): a dashboard polls
a big league's view while another import stores matches and players.

For each binary given (`--binary NAME=PATH`, default the release build), in one run:
1. Starts the fixture upstream (no latency) on the parsed league data set of bench/scale.py
   (bench/gen_league.py --parsed; `--data DIR` reuses one) and the service with no rate limit,
   and imports the league (1,000 matches, 10,000 players by default) until complete.
2. Keep-alive GETs of the team view 20 ms apart (a poller) while nothing is written (`idle`).
3. The same GETs while a writer thread refetches, over and over, the one large match that is
   not part of the league (`POST /api/matches/{id}?force=true`, then polls until it is stored
   anew; its players cascade): writes to resources the view was not rendered from.
Reports median/p90/p99 ms of each series and how many writes the writer made meanwhile.

Usage: view_under_writes.py OUT.json [--binary NAME=PATH ...] [--matches 1000]
                                     [--players 10000] [--data DIR] [--requests 200]
"""

import argparse
import os
import sys
import threading
import time

import common
import scale

# Between two GETs of a series: polls, not a flood, so the writer's commits fall between them.
INTERVAL_S = 0.02


def writer(addr, match_id, stop, counts):
    """Refetches match `match_id` until `stop` is set; counts the refetches that completed."""
    path = f"/api/matches/{match_id}"
    while not stop.is_set():
        status, _ = common.request("POST", addr, f"{path}?force=true")
        if status not in (200, 202):
            counts["errors"] += 1
            time.sleep(0.1)
            continue
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            if common.request("GET", addr, path)[0] == 200:
                counts["refetches"] += 1
                break
            time.sleep(0.005)


def polled_gets(addr, path, n):
    """`n` GETs of `path` INTERVAL_S apart on one keep-alive connection: median/p90/p99 ms."""
    lat = []
    conn = common.keepalive(addr)
    try:
        for _ in range(n):
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            lat.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                raise RuntimeError(f"GET {path} answered {resp.status}")
            time.sleep(INTERVAL_S)
    finally:
        conn.close()
    return {"requests": n, "intervalMs": INTERVAL_S * 1000,
            "medianMs": round(sorted(lat)[len(lat) // 2], 3),
            "p90Ms": round(common.percentile(lat, 90), 3),
            "p99Ms": round(common.percentile(lat, 99), 3)}


def run(name, binary, data, manifest, requests):
    work = common.tempdir(f"view-writes-{name}")
    fixture = common.start_fixture(work, latency_ms=0, data_dir=data)
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    argv = [binary, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
            "--opendota-url", f"http://{fixture.addr}/opendota",
            "--dotabuff-url", f"http://{fixture.addr}/dotabuff", "--nats-port", "0",
            *scale.UNLIMITED]
    svc, _ = scale.start_timed(name, argv, work, data_dir)
    team_path = f"/api/teams/{manifest['teamId']}/matches?leagueId={manifest['leagueId']}"
    print(f"  {name}: import of {manifest['matches']} matches + {manifest['players']} players",
          flush=True)
    imp = scale.run_import(svc, team_path)
    print(f"    imported in {imp['wallS']} s", flush=True)
    time.sleep(2)
    idle = polled_gets(svc.addr, team_path, requests)
    stop, counts = threading.Event(), {"refetches": 0, "errors": 0}
    thread = threading.Thread(target=writer,
                              args=(svc.addr, manifest["largeMatchId"], stop, counts))
    thread.start()
    try:
        time.sleep(1)
        t0 = time.monotonic()
        busy = polled_gets(svc.addr, team_path, requests)
        busy["seconds"] = round(time.monotonic() - t0, 2)
    finally:
        stop.set()
        thread.join()
    busy.update(counts)
    for label, v in (("idle", idle), ("other writes", busy)):
        print(f"    {label:13} median {v['medianMs']:8.3f} ms  p99 {v['p99Ms']:8.3f} ms",
              flush=True)
    print(f"    the writer refetched the other match {counts['refetches']} times meanwhile",
          flush=True)
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)
    return {"binary": binary, "import": {k: imp[k] for k in ("wallS", "storedResources")},
            "idle": idle, "otherWrites": busy}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--binary", action="append", default=[],
                    help="NAME=PATH; repeat to compare builds (default: the release build)")
    ap.add_argument("--matches", type=int, default=1000)
    ap.add_argument("--players", type=int, default=10000)
    ap.add_argument("--data", default=None)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    binaries = [b.split("=", 1) for b in args.binary] or [["release", common.BINARY]]
    base = args.data or common.tempdir("view-writes-data")
    data, manifest = scale.dataset(base, args.matches, args.players)
    results = {"loadAverageBefore": common.load_average(), "runs": {}}
    for name, binary in binaries:
        results["runs"][name] = run(name, binary, data, manifest, args.requests)
    results["loadAverageAfter"] = common.load_average()
    common.write_json(args.out, results)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
