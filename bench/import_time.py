#!/usr/bin/env python3
"""Benchmark 1: wall time of the demo team import against the OpenDota rate budget.

Each run starts a fresh fixture upstream (fresh rate windows and counters) and a fresh service
(fresh data dir), POSTs the import of team 9517508 in league 16435, and polls GET every 100 ms
until the progress is complete (every match ready, every player of those matches ready or failed).
It records the seconds from POST to the first complete GET, phase times, the upstream calls the
fixture counted (`/_stats`), and the limiter's own grant/wait counters (`/api/queue/status`).

Usage: import_time.py OUT.json [--runs N] [--opendota-per-min N] [--dotabuff-per-min N]
                              [--latency-ms N] [--timeout-s N]
"""

import argparse
import datetime
import statistics
import sys
import time

import common

POLL_S = 0.1


def progress_complete(p):
    return (p["matchesTotal"] > 0 and p["matchesReady"] == p["matchesTotal"]
            and p["playersReady"] + p["failed"] >= p["playersTotal"])


def budget(svc, service_name):
    status = common.queue_status_now(svc.addr)
    services = (status or {}).get("services", {})
    return (services.get(service_name) or {}).get("budget")


def one_run(args, index):
    work = common.tempdir("import")
    fixture = common.start_fixture(work, args.latency_ms, rate_limit_per_min=args.opendota_per_min)
    svc = common.start_service(work, fixture, args.opendota_per_min, args.dotabuff_per_min)
    path = f"/api/teams/{common.TEAM_ID}/matches?leagueId={common.LEAGUE_ID}"

    wall_start = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    status, _ = common.request("POST", svc.addr, path)
    if status not in (200, 202):
        raise RuntimeError(f"POST {path} answered {status}")
    phases = {"postS": time.monotonic() - t0}
    deadline = t0 + args.timeout_s
    progress = None
    polls = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"import not complete after {args.timeout_s}s; last progress {progress}")
        time.sleep(POLL_S)
        polls += 1
        status, view = common.request("GET", svc.addr, path)
        if status != 200 or not isinstance(view, dict) or "progress" not in view:
            continue
        progress = view["progress"]
        now = time.monotonic() - t0
        if progress["matchesTotal"] > 0:
            phases.setdefault("recordStoredS", now)
            if progress["matchesReady"] > 0:
                phases.setdefault("firstMatchReadyS", now)
            if progress["matchesReady"] == progress["matchesTotal"]:
                phases.setdefault("matchesReadyS", now)
            if progress["playersReady"] > 0:
                phases.setdefault("firstPlayerReadyS", now)
        if progress_complete(progress):
            break
    wall_s = time.monotonic() - t0
    stats = common.fixture_stats(fixture)
    opendota_budget = budget(svc, "opendota")
    # Anything the service still asks for after completion would be a surprise: look once more.
    time.sleep(1.0)
    later = common.fixture_stats(fixture)
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)

    run = {
        "run": index,
        "wallS": round(wall_s, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "polls": polls,
        "startUtc": wall_start.isoformat(timespec="milliseconds"),
        "startSecondOfMinute": round(wall_start.second + wall_start.microsecond / 1e6, 2),
        "crossedMinute": (wall_start.second + wall_start.microsecond / 1e6 + wall_s) >= 60,
        "progress": progress,
        "upstream": {
            "total": stats["total"],
            "opendota": common.opendota_calls(stats),
            "dotabuff": common.dotabuff_calls(stats),
            "rateLimited": stats["rateLimited"],
            "failed": stats["failed"],
            "status404": sum(p["status"].get("404", 0) for p in stats["paths"].values()),
            "totalOneSecondLater": later["total"],
        },
        "limiter": {k: opendota_budget.get(k) for k in ("grantedTotal", "waitsTotal")}
        if opendota_budget else None,
    }
    print(f"  run {index}: {run['wallS']:.2f}s, {run['upstream']['opendota']} OpenDota + "
          f"{run['upstream']['dotabuff']} Dotabuff calls, 429s={run['upstream']['rateLimited']}, "
          f"start at :{run['startSecondOfMinute']:05.2f}", flush=True)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--opendota-per-min", type=int, default=60)
    ap.add_argument("--dotabuff-per-min", type=int, default=30)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--timeout-s", type=float, default=150)
    args = ap.parse_args()
    if not 1 <= args.runs <= 20:
        sys.exit("--runs must be 1..20")

    print(f"import: {args.runs} runs, OpenDota {args.opendota_per_min}/min, "
          f"Dotabuff {args.dotabuff_per_min}/min, fixture latency {args.latency_ms} ms", flush=True)
    load_start = common.load_average()
    runs = [one_run(args, i + 1) for i in range(args.runs)]
    walls = [r["wallS"] for r in runs]
    calls = [r["upstream"]["opendota"] for r in runs]
    median_calls = statistics.median(calls)
    even_s = median_calls * 60.0 / args.opendota_per_min
    median_wall = statistics.median(walls)
    result = {
        "load": {"start": load_start, "end": common.load_average()},
        "params": vars(args) | {"pollS": POLL_S, "team": common.TEAM_ID, "league": common.LEAGUE_ID},
        "runs": runs,
        "summary": {
            "medianWallS": round(median_wall, 3),
            "minWallS": min(walls),
            "maxWallS": max(walls),
            "medianOpendotaCalls": median_calls,
            "medianDotabuffCalls": statistics.median(r["upstream"]["dotabuff"] for r in runs),
            "rateLimitedTotal": sum(r["upstream"]["rateLimited"] for r in runs),
            "evenlySpacedLowerBoundS": round(even_s, 3),
            "speedupVsEvenSpacing": round(even_s / median_wall, 2),
            "medianPhases": {
                k: round(statistics.median(r["phases"][k] for r in runs if k in r["phases"]), 3)
                for k in ("recordStoredS", "firstMatchReadyS", "matchesReadyS", "firstPlayerReadyS")
                if any(k in r["phases"] for r in runs)
            },
        },
    }
    common.write_json(args.out, result)
    print(f"  median {median_wall:.2f}s vs evenly spaced >= {even_s:.0f}s "
          f"({result['summary']['speedupVsEvenSpacing']}x)", flush=True)


if __name__ == "__main__":
    main()
