#!/usr/bin/env python3
"""Benchmark: one team's import of a 300-match league through Steam (issue 18), against the
same import through the Dotabuff chain.

Data: `gen_league.generate` (300 matches of team 9700001 in league 17000, 3,000 players, OpenDota
bodies, Dotabuff pages of 20 rows) plus what Steam would answer for it: `steam/leagues/17000.json`
(the 300 rows in GetMatchHistory's shape: team IDs on both sides, ten players with `account_id`,
`player_slot`, `hero_id`) and `steam/teams/9700001.json`. The fixture upstream (release binary)
answers every call after `--latency-ms` (100 ms), pages Steam 100 rows at a time, and counts calls.

Each run is a fresh fixture and a fresh service (fresh data dir). The service runs with budgets
that do not bind (OpenDota 100,000/min and /day, Steam at its default 60/min, `--max-in-flight`
as given), so the wall time shows the import's dependency chain, not a rate limit:
- **steam**: `--steam-api-key bench --team-sources steam`. Steam calls must be ⌈300/100⌉ + 1
  (three history pages, one GetTeamInfoByTeamID, asked while the pages come). Floor: the league
  pages in sequence plus one match round trip (the players are queued with the matches, from the
  history, so they no longer wait for their match): (3 + 1) × latency, plus the OpenDota calls
  (300 matches + 3,000 players) spread over `--max-in-flight` slots: ⌈3300 / max⌉ × latency.
- **dotabuff**: `--team-sources dotabuff` (15 pages, Dotabuff's default steady 30/min, which is
  how the chain runs against the real site), the players waiting for their match body.

Usage: steam_import.py OUT.json [--runs 3] [--latency-ms 100] [--max-in-flight 64]
                               [--dotabuff-per-min 30] [--timeout-s 300]
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import common
import gen_league

POLL_S = 0.05
LEAGUE = gen_league.LEAGUE_ID
TEAM = gen_league.TEAM_ID
PAGE = 100


def steam_files(out):
    """Adds Steam's view of the generated league to `out`."""
    rows = []
    matches_dir = os.path.join(out, "opendota", "matches")
    for name in sorted(os.listdir(matches_dir)):
        with open(os.path.join(matches_dir, name), encoding="utf-8") as f:
            m = json.load(f)
        if m.get("leagueid") != LEAGUE or m["match_id"] == gen_league.LARGE_MATCH_ID:
            continue
        rows.append({
            "series_id": 0, "series_type": 0, "match_id": m["match_id"],
            "match_seq_num": m.get("match_seq_num", m["match_id"]), "start_time": m["start_time"],
            "lobby_type": 1, "radiant_team_id": m["radiant_team_id"],
            "dire_team_id": m["dire_team_id"],
            "players": [{"account_id": p["account_id"], "player_slot": p["player_slot"],
                         "hero_id": p["hero_id"]} for p in m["players"]],
        })
    os.makedirs(os.path.join(out, "steam", "leagues"), exist_ok=True)
    os.makedirs(os.path.join(out, "steam", "teams"), exist_ok=True)
    with open(os.path.join(out, "steam", "leagues", f"{LEAGUE}.json"), "w") as f:
        json.dump({"matches": rows}, f)
    team = {"result": {"status": 1, "teams": [{"team_id": TEAM, "name": gen_league.TEAM_NAME,
                                                "tag": gen_league.TEAM_TAG}]}}
    with open(os.path.join(out, "steam", "teams", f"{TEAM}.json"), "w") as f:
        json.dump(team, f)
    return len(rows)


def complete(p):
    return (p["matchesTotal"] > 0 and p["matchesReady"] == p["matchesTotal"]
            and p["playersReady"] + p["failed"] >= p["playersTotal"])


def one_run(args, data, chain, index):
    work = common.tempdir(f"steam-{chain}")
    fixture = common.start_fixture(work, args.latency_ms, data_dir=data)
    extra = ["--team-sources", chain, "--opendota-daily-limit", "100000",
             "--max-in-flight", str(args.max_in_flight)]
    if chain == "steam":
        extra += ["--steam-api-key", "bench", "--steam-url", f"http://{fixture.addr}/steam"]
    svc = common.start_service(work, fixture, 100_000, args.dotabuff_per_min, extra)
    path = f"/api/teams/{TEAM}/matches?leagueId={LEAGUE}"
    t0 = time.monotonic()
    status, _ = common.request("POST", svc.addr, path)
    if status not in (200, 202):
        raise RuntimeError(f"POST {path} answered {status}")
    phases, view = {}, None
    while True:
        if time.monotonic() - t0 > args.timeout_s:
            raise TimeoutError(f"{chain}: import not complete after {args.timeout_s}s")
        time.sleep(POLL_S)
        status, view = common.request("GET", svc.addr, path)
        if status != 200 or not isinstance(view, dict) or "progress" not in view:
            continue
        p, now = view["progress"], time.monotonic() - t0
        if p["matchesTotal"] > 0:
            phases.setdefault("recordStoredS", round(now, 3))
        if p["playersReady"] > 0:
            phases.setdefault("firstPlayerReadyS", round(now, 3))
        if complete(p):
            break
    wall = time.monotonic() - t0
    stats = common.fixture_stats(fixture)
    steam = sum(v["requests"] for k, v in stats["paths"].items() if k.startswith("/steam/"))
    svc.stop()
    fixture.stop()
    common.remove_tempdir(work)
    run = {"run": index, "chain": chain, "wallS": round(wall, 3), "phases": phases,
           "source": view.get("source"), "matches": view["progress"]["matchesTotal"],
           "players": view["progress"]["playersTotal"],
           "calls": {"steam": steam, "opendota": common.opendota_calls(stats),
                     "dotabuff": common.dotabuff_calls(stats)}}
    print(f"  {chain} run {index}: {run['wallS']:.2f}s, calls {run['calls']}, "
          f"source {run['source']}, phases {phases}", flush=True)
    return run


def summary(runs):
    walls = [r["wallS"] for r in runs]
    return {"medianWallS": statistics.median(walls), "minWallS": min(walls),
            "maxWallS": max(walls), "calls": runs[0]["calls"],
            "medianRecordStoredS": statistics.median(r["phases"]["recordStoredS"] for r in runs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-ms", type=int, default=100)
    ap.add_argument("--max-in-flight", type=int, default=64)
    ap.add_argument("--dotabuff-per-min", type=int, default=30)
    ap.add_argument("--timeout-s", type=float, default=300)
    args = ap.parse_args()
    if not 1 <= args.runs <= 10:
        sys.exit("--runs must be 1..10")
    data = common.tempdir("steam-data")
    manifest = gen_league.generate(data, 300, 3000)
    n = steam_files(data)
    load_start = common.load_average()
    steam = [one_run(args, data, "steam", i + 1) for i in range(args.runs)]
    dotabuff = [one_run(args, data, "dotabuff", i + 1) for i in range(args.runs)]
    latency = args.latency_ms / 1000
    pages = math.ceil(n / PAGE)
    opendota_calls = steam[0]["calls"]["opendota"]
    floor = (pages + 1) * latency
    throughput_floor = math.ceil(opendota_calls / args.max_in_flight) * latency
    result = {
        "load": {"start": load_start, "end": common.load_average()},
        "params": vars(args) | {"matches": n, "players": manifest["players"], "team": TEAM,
                                "league": LEAGUE, "pollS": POLL_S},
        "expectedSteamCalls": pages + 1,
        "floorS": round(floor, 3),
        "openDotaThroughputFloorS": round(throughput_floor, 3),
        "steam": {"runs": steam, "summary": summary(steam)},
        "dotabuff": {"runs": dotabuff, "summary": summary(dotabuff)},
    }
    common.write_json(args.out, result)
    common.remove_tempdir(data)
    s, d = result["steam"]["summary"], result["dotabuff"]["summary"]
    print(f"steam: {s['calls']['steam']} Steam calls (expected {pages + 1}), median "
          f"{s['medianWallS']:.2f}s; floor {floor:.2f}s (+ OpenDota {throughput_floor:.2f}s); "
          f"dotabuff chain median {d['medianWallS']:.2f}s", flush=True)


if __name__ == "__main__":
    main()
