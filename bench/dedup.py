#!/usr/bin/env python3
"""Benchmark 3: deduplication of concurrent requests for one resource.

Each run starts a fresh fixture upstream and service, then 50 threads wait on a barrier and
POST /api/matches/{id} for a match that is not stored, each on its own connection. The main
thread polls GET every 20 ms until the match is served (200), then reads the fixture's counters:
the requests for that match's upstream path must be exactly 1, and no player of the match may
have been asked for more than once (the stored match fans out to its players once).

Usage: dedup.py OUT.json [--runs N] [--clients N] [--match-id ID] [--timeout-s N]
"""

import argparse
import statistics
import sys
import threading
import time

import common

POLL_S = 0.02


def one_run(args, index):
    work = common.tempdir("dedup")
    fixture = common.start_fixture(work, latency_ms=50, rate_limit_per_min=60)
    svc = common.start_service(work, fixture, 60, 30)
    path = f"/api/matches/{args.match_id}"

    barrier = threading.Barrier(args.clients + 1, timeout=30)
    answers = [None] * args.clients

    def client(i):
        barrier.wait()
        t = time.monotonic()
        status, body = common.request("POST", svc.addr, path, timeout=30)
        answers[i] = (status, (body or {}).get("status"), time.monotonic() - t)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(timeout=args.timeout_s)
    posts_done_s = time.monotonic() - t0
    if any(a is None for a in answers):
        raise RuntimeError("some POSTs did not finish in time")

    deadline = t0 + args.timeout_s
    while common.request("GET", svc.addr, path)[0] != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"match not ready after {args.timeout_s}s")
        time.sleep(POLL_S)
    ready_s = time.monotonic() - t0

    time.sleep(0.5)  # let the player fan-out's calls land before counting
    stats = common.fixture_stats(fixture)
    match_calls = stats["paths"].get(f"/opendota/matches/{args.match_id}", {}).get("requests", 0)
    player_calls = [p["requests"] for k, p in stats["paths"].items() if k.startswith("/opendota/players/")]
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)

    statuses = {}
    for status, answer, _ in answers:
        key = f"{status} {answer}"
        statuses[key] = statuses.get(key, 0) + 1
    post_ms = [a[2] * 1000 for a in answers]
    run = {
        "run": index,
        "matchUpstreamRequests": match_calls,
        "playerPaths": len(player_calls),
        "maxRequestsPerPlayerPath": max(player_calls, default=0),
        "rateLimited": stats["rateLimited"],
        "readyS": round(ready_s, 3),
        "allPostsAnsweredS": round(posts_done_s, 3),
        "postMedianMs": round(statistics.median(post_ms), 1),
        "postMaxMs": round(max(post_ms), 1),
        "answers": statuses,
    }
    print(f"  run {index}: {match_calls} upstream request(s) for the match, ready after "
          f"{run['readyS']:.3f}s, POSTs {statuses}, max per player path "
          f"{run['maxRequestsPerPlayerPath']}", flush=True)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--match-id", default="7930696222")
    ap.add_argument("--timeout-s", type=float, default=30)
    args = ap.parse_args()
    if not (1 <= args.runs <= 20 and 1 <= args.clients <= 200):
        sys.exit("--runs must be 1..20 and --clients 1..200")

    print(f"dedup: {args.runs} runs, {args.clients} concurrent POSTs of match {args.match_id}, "
          f"fixture latency 50 ms", flush=True)
    load_start = common.load_average()
    runs = [one_run(args, i + 1) for i in range(args.runs)]
    ready = [r["readyS"] for r in runs]
    summary = {
        "matchUpstreamRequests": sorted({r["matchUpstreamRequests"] for r in runs}),
        "maxRequestsPerPlayerPath": max(r["maxRequestsPerPlayerPath"] for r in runs),
        "medianReadyS": round(statistics.median(ready), 3),
        "minReadyS": min(ready),
        "maxReadyS": max(ready),
        "medianAllPostsAnsweredS": round(statistics.median(r["allPostsAnsweredS"] for r in runs), 3),
        "medianPostMs": round(statistics.median(r["postMedianMs"] for r in runs), 1),
    }
    common.write_json(args.out, {"load": {"start": load_start, "end": common.load_average()},
        "params": vars(args) | {"pollS": POLL_S}, "runs": runs, "summary": summary})
    print(f"  upstream requests per run {summary['matchUpstreamRequests']}, median ready "
          f"{summary['medianReadyS']}s", flush=True)


if __name__ == "__main__":
    main()
