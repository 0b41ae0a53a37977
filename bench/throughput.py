#!/usr/bin/env python3
"""Throughput benchmark (issue 10): does the rate budget, not the worker pool or the queue, set
the pace of a fan-out? Three scenarios, each on a fresh fixture upstream and a fresh service
(release build), each checked for 0 upstream 429s and exactly one upstream call per resource:

  a  no budget constraint, 50 ms latency: 5 matches fanning out to 40 players.
     Floor: two dependent round trips (0.1 s). Goal: wall <= 0.25 s.
  b  60 calls/min, no latency: 18 matches fanning out to 144 players (162 calls), started 5 s
     before a minute ends, so the calls span three calendar windows.
     Floor: the third window opens (all 162 calls need 3 windows of 60) plus one round trip.
     Goal: wall <= 1.05 x floor.
  c  1,200 calls/min, 600 ms latency: 120 matches fanning out to 1,200 distinct players (1,320
     calls), started 1 s into a minute. Floor: window 2 opens for the last 120 calls (59 s)
     plus two round trips (1.2 s), about 60.2 s. Goal: wall <= 1.05 x floor. Also reported:
     what a fixed pool of 4 workers would take (4 calls in flight at 600 ms each).

Wall time runs from the first POST to the last `ready` event for the scenario's resources on
`/api/events` (SSE, read by a thread that was connected before the first POST).

Usage: throughput.py OUT.json [--only a,b,c]
"""

import argparse
import datetime
import http.client
import json
import os
import sys
import threading
import time

import common

SCENARIOS = {
    "a": dict(matches=5, players_per_match=8, latency_ms=50, per_min=100_000, start_second=None,
              timeout_s=60),
    "b": dict(matches=18, players_per_match=8, latency_ms=0, per_min=60, start_second=55,
              timeout_s=240),
    "c": dict(matches=120, players_per_match=10, latency_ms=600, per_min=1_200, start_second=1,
              timeout_s=240),
}
MATCH_BASE = 8_100_000_000
PLAYER_BASE = 350_000_000


def write_data(root, matches, players_per_match):
    """An OpenDota data set in the fixture's layout: `matches` matches, each with
    `players_per_match` public players (all distinct) and the rest anonymous."""
    os.makedirs(os.path.join(root, "opendota", "matches"), exist_ok=True)
    os.makedirs(os.path.join(root, "opendota", "players"), exist_ok=True)
    os.makedirs(os.path.join(root, "dotabuff"), exist_ok=True)
    for m in range(matches):
        match_id = MATCH_BASE + m
        players = []
        for slot in range(10):
            account = PLAYER_BASE + m * 10 + slot if slot < players_per_match else None
            players.append({
                "match_id": match_id, "player_slot": slot if slot < 5 else 123 + slot,
                "account_id": account, "isRadiant": slot < 5, "hero_id": 1 + slot,
                "kills": slot, "deaths": 2, "assists": 7, "last_hits": 100 + slot,
                "gold_per_min": 400, "xp_per_min": 500,
                "personaname": f"player-{account}" if account else None,
            })
            if account:
                body = {"profile": {"account_id": account, "personaname": f"player-{account}",
                                    "avatar": "https://avatars.steamstatic.com/x.jpg"},
                        "rank_tier": 55, "leaderboard_rank": None}
                with open(os.path.join(root, "opendota", "players", f"{account}.json"), "w") as f:
                    json.dump(body, f)
        body = {"match_id": match_id, "radiant_win": m % 2 == 0, "duration": 2400,
                "start_time": 1732583370 + m, "leagueid": 16435, "radiant_team_id": 9517508,
                "radiant_name": "Maple Syrup", "dire_team_id": 9517693, "dire_name": "Frost Giants",
                "radiant_score": 30, "dire_score": 12, "players": players}
        with open(os.path.join(root, "opendota", "matches", f"{match_id}.json"), "w") as f:
            json.dump(body, f)
    return [MATCH_BASE + m for m in range(matches)]


class ReadyEvents(threading.Thread):
    """Reads `ready` events from the service's SSE stream and records when each arrived."""

    def __init__(self, addr):
        super().__init__(daemon=True)
        host, port = addr.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=300)
        self.conn.request("GET", "/api/events?kind=match,player")
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"/api/events answered {self.resp.status}")
        self.seen = {}  # signature -> monotonic arrival
        self.lock = threading.Lock()

    def run(self):
        event = None
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "ready":
                    data = json.loads(line[5:])
                    with self.lock:
                        self.seen.setdefault(data["signature"], time.monotonic())
        except (OSError, ValueError):
            return

    def count(self):
        with self.lock:
            return len(self.seen)

    def last(self):
        with self.lock:
            return max(self.seen.values()) if self.seen else None


def wait_for_second(second):
    """Sleeps until the wall clock is at `second` (0-59) into a minute."""
    now = datetime.datetime.now(datetime.timezone.utc)
    target = now.replace(second=second, microsecond=0)
    if target <= now + datetime.timedelta(milliseconds=200):
        target += datetime.timedelta(minutes=1)
    time.sleep((target - now).total_seconds())


def post_all(addr, paths):
    """POSTs every path concurrently (one connection each), as a dashboard's requests would."""
    errors = []

    def one(path):
        status, _ = common.request("POST", addr, path)
        if status not in (200, 202):
            errors.append((path, status))

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"POSTs failed: {errors[:5]}")


def floor_s(name, cfg, start_offset_s, calls):
    """The scenario's floor in seconds from the first POST."""
    rtt = cfg["latency_ms"] / 1000
    if name == "a":
        return 2 * rtt
    windows_needed = -(-calls // cfg["per_min"])  # ceil
    # The last window opens (windows_needed - 1) boundaries after the start; the first boundary
    # comes (60 - offset) s after the start. Then the calls of that window: one round trip when
    # only fan-out children are left in it (b: no latency), two when a parent is among them.
    last_window_opens = (60 - start_offset_s) + 60 * (windows_needed - 2)
    return last_window_opens + (2 * rtt if name == "c" else rtt)


def run(name, cfg, extra_flags):
    work = common.tempdir(f"throughput-{name}")
    data = os.path.join(work, "fixture-data")
    matches = write_data(data, cfg["matches"], cfg["players_per_match"])
    calls = cfg["matches"] * (1 + cfg["players_per_match"])
    fixture = common.start_fixture(work, cfg["latency_ms"], rate_limit_per_min=cfg["per_min"],
                                   data_dir=data)
    extra = ["--opendota-daily-limit", "1000000", *extra_flags]
    svc = common.start_service(work, fixture, cfg["per_min"], 30, extra=extra)
    events = ReadyEvents(svc.addr)
    events.start()
    time.sleep(0.5)  # let the SSE relay subscribe before the first event
    if cfg["start_second"] is not None:
        wait_for_second(cfg["start_second"])
    start_wall = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    post_all(svc.addr, [f"/api/matches/{m}" for m in matches])
    deadline = t0 + cfg["timeout_s"]
    while events.count() < calls and time.monotonic() < deadline:
        time.sleep(0.01)
    if events.count() < calls:
        raise TimeoutError(f"scenario {name}: {events.count()} of {calls} ready after "
                           f"{cfg['timeout_s']} s")
    wall = events.last() - t0
    stats = common.fixture_stats(fixture)
    per_path = [p["requests"] for k, p in stats["paths"].items() if k.startswith("/opendota/")]
    offset = start_wall.second + start_wall.microsecond / 1e6
    floor = floor_s(name, cfg, offset, calls)
    result = {
        "scenario": name, "calls": calls, "matches": cfg["matches"],
        "players": cfg["matches"] * cfg["players_per_match"],
        "latencyMs": cfg["latency_ms"], "perMinute": cfg["per_min"],
        "startedAt": start_wall.isoformat(timespec="milliseconds"),
        "startSecondInMinute": round(offset, 3),
        "wallS": round(wall, 3), "floorS": round(floor, 3),
        "ratio": round(wall / floor, 3) if floor > 0 else None,
        "upstreamCalls": sum(per_path), "maxCallsPerResource": max(per_path) if per_path else 0,
        "rateLimited": stats.get("rateLimited", 0),
        "fixtureMaxConcurrent": stats.get("inFlightMax"),
        "extraFlags": list(extra_flags),
        "loadAverage": common.load_average(),
    }
    if name == "c":
        # A fixed pool of 4 with no idle delay: 4 calls in flight, each one round trip; the
        # budget (1,200 in window 1) never binds at 6.7 calls/s.
        result["fixedPool4S"] = round(calls / 4 * cfg["latency_ms"] / 1000, 1)
    svc.stop()
    fixture.stop()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--only", default="a,b,c")
    parser.add_argument("--flags", default="", help="extra service flags, space separated")
    args = parser.parse_args()
    results = []
    for name in args.only.split(","):
        cfg = SCENARIOS[name]
        print(f"throughput: scenario {name} ...", flush=True)
        r = run(name, cfg, args.flags.split())
        print(f"  wall {r['wallS']} s, floor {r['floorS']} s, ratio {r['ratio']}, "
              f"calls {r['upstreamCalls']}/{r['calls']}, max per resource "
              f"{r['maxCallsPerResource']}, 429s {r['rateLimited']}, fixture max concurrent "
              f"{r['fixtureMaxConcurrent']}", flush=True)
        results.append(r)
    common.write_json(args.out, {"results": results})


if __name__ == "__main__":
    sys.exit(main())
