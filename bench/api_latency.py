#!/usr/bin/env python3
"""Benchmark 2: API latency for data that is already stored.

Starts one fixture upstream and one service, runs the demo team import to completion, then
sends sequential requests from one client thread (after a warm-up) to:
  GET  /api/matches/{id}    ready match, the stored OpenDota JSON (~14 KB)
  POST /api/matches/{id}    ready match, {"status":"ready"}
  GET  /api/queue/status    the latest background snapshot (JetStream depth, work, budgets)
  GET  /api/teams/{team}/matches?leagueId=..   the team view the dashboard polls
on one keep-alive connection (http.client), and GET /api/matches/{id} once more with a new
connection per request (urllib, like bench 1's poller), and, as a floor for client + loopback
cost, GET /_stats of the fixture upstream (in-memory warp route). Each series is bounded in
count and time.

Usage: api_latency.py OUT.json [--requests N] [--warmup N] [--series-timeout-s N]
"""

import argparse
import statistics
import sys
import time
import urllib.request

import common


def timed_keepalive(addr, method, path, n, warmup, timeout_s, expect):
    conn = common.keepalive(addr)
    lat, size = [], None
    deadline = time.monotonic() + timeout_s
    start = None
    try:
        for i in range(warmup + n):
            if i == warmup:
                start = time.perf_counter()
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            conn.request(method, path, body=b"" if method == "POST" else None)
            resp = conn.getresponse()
            body = resp.read()
            dt = time.perf_counter() - t
            if resp.status != expect:
                raise RuntimeError(f"{method} {path} answered {resp.status}: {body[:200]!r}")
            size = len(body)
            if i >= warmup:
                lat.append(dt)
    finally:
        conn.close()
    return summarize(method, path, lat, time.perf_counter() - start, size, "keep-alive", n)


def timed_new_connection(addr, path, n, warmup, timeout_s):
    lat, size = [], None
    deadline = time.monotonic() + timeout_s
    start = None
    for i in range(warmup + n):
        if i == warmup:
            start = time.perf_counter()
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as resp:
            body = resp.read()
            status = resp.status
        dt = time.perf_counter() - t
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}")
        size = len(body)
        if i >= warmup:
            lat.append(dt)
    return summarize("GET", path, lat, time.perf_counter() - start, size, "new connection", n)


def summarize(method, path, lat, elapsed, size, conn, planned):
    ms = [x * 1000 for x in lat]
    out = {
        "method": method,
        "path": path,
        "connection": conn,
        "requests": len(ms),
        "planned": planned,
        "bodyBytes": size,
        "medianMs": round(statistics.median(ms), 3),
        "p90Ms": round(common.percentile(ms, 90), 3),
        "p99Ms": round(common.percentile(ms, 99), 3),
        "minMs": round(min(ms), 3),
        "maxMs": round(max(ms), 3),
        "requestsPerS": round(len(ms) / elapsed, 1),
    }
    print(f"  {method:4} {path} ({conn}): n={out['requests']} median {out['medianMs']} ms, "
          f"p90 {out['p90Ms']}, p99 {out['p99Ms']}, {out['requestsPerS']} req/s, "
          f"{size} B", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--series-timeout-s", type=float, default=60)
    args = ap.parse_args()
    if not 1 <= args.requests <= 100_000:
        sys.exit("--requests must be 1..100000")

    work = common.tempdir("latency")
    fixture = common.start_fixture(work, latency_ms=50, rate_limit_per_min=60)
    svc = common.start_service(work, fixture, 60, 30)
    team_path = f"/api/teams/{common.TEAM_ID}/matches?leagueId={common.LEAGUE_ID}"
    common.request("POST", svc.addr, team_path)
    view = {}

    def complete():
        nonlocal view
        status, view = common.request("GET", svc.addr, team_path)
        p = (view or {}).get("progress") if status == 200 else None
        return bool(p) and p["matchesTotal"] > 0 and p["matchesReady"] == p["matchesTotal"] \
            and p["playersReady"] + p["failed"] >= p["playersTotal"]

    common.wait_until(complete, 150, "the demo import to complete")
    match_id = view["matchIds"][0]
    match_path = f"/api/matches/{match_id}"
    print(f"api latency: import complete; {args.requests} sequential requests per series "
          f"(+{args.warmup} warm-up), match {match_id}", flush=True)

    n, w, cap = args.requests, args.warmup, args.series_timeout_s
    load_start = common.load_average()
    series = [
        timed_keepalive(svc.addr, "GET", match_path, n, w, cap, 200),
        timed_keepalive(svc.addr, "POST", match_path, n, w, cap, 200),
        timed_keepalive(svc.addr, "GET", "/api/queue/status", n, w, cap, 200),
        timed_keepalive(svc.addr, "GET", team_path, n, w, cap, 200),
        timed_new_connection(svc.addr, match_path, n, w, cap),
        # Floor: the same client against a trivial warp route (fixture counters, in memory).
        timed_keepalive(fixture.addr, "GET", "/_stats", n, w, cap, 200),
    ]
    series[-1]["baseline"] = True
    svc.stop()
    fixture.stop()
    common.write_json(args.out, {"load": {"start": load_start, "end": common.load_average()},
                                 "params": vars(args) | {"matchId": match_id}, "series": series})


if __name__ == "__main__":
    main()
