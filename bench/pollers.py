"""1,000 concurrent pollers for 60 s against ready, failed and queued resources (issue 8).

Starts the release binary in `--demo` mode with an OpenDota daily budget of 2 calls, spends it on
one match that ends `ready` (200) and one the demo data lacks, which ends `failed` (upstream 404,
so GET answers 404), then points three `wrk` processes at the service at the same time, each with
its own share of the connections so every answer can be checked against its path:

    ready   GET /api/matches/<demo match>            expect 200
    failed  GET /api/matches/<id not in the demo>    expect 404
    queued  GET /api/matches/<4 other demo matches>  expect 202 (the budget is spent, so they stay
                                                     queued for the whole run)

    python3 bench/pollers.py OUT.json [--connections 1000] [--duration 60]

Counts per kind: requests, answers by status, unexpected statuses, wrk's socket errors, latency
percentiles. Exit status 1 on any unexpected status or socket error. Run by `bench/pollers.sh`.
"""

import argparse
import json
import os
import subprocess
import sys

import common
import demo

READY_MATCH = "7930696222"
FAILED_MATCH = "1000000001"  # not in fixtures/demo: the fixture answers 404
QUEUED_MATCHES = ["7930724122", "7935349545", "7935382023", "7940008222"]
LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pollers.lua")


def prepare(addr):
    """Spends the 2-call budget: the failed match first (a ready match may queue more work)."""
    for match, want in ((FAILED_MATCH, 404), (READY_MATCH, 200)):
        common.request("POST", addr, f"/api/matches/{match}")
        common.wait_until(lambda: common.request("GET", addr, f"/api/matches/{match}")[0] == want,
                          30, f"match {match} answering {want}")
    for match in QUEUED_MATCHES:
        status, _ = common.request("POST", addr, f"/api/matches/{match}")
        if status != 202:
            raise RuntimeError(f"match {match} should be queued, POST answered {status}")


def run_wrk(addr, kind, paths, expect, connections, duration):
    env = dict(os.environ, POLL_PATHS=",".join(paths), POLL_EXPECT=",".join(map(str, expect)))
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s",
            "-s", LUA, f"http://{addr}"]
    return kind, subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True)


def parse(kind, proc):
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("POLLERS_JSON "):
            return json.loads(line.split(" ", 1)[1])
    raise RuntimeError(f"wrk ({kind}) printed no result:\n{out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--duration", type=int, default=60)
    args = ap.parse_args()

    work = common.tempdir("pollers")
    svc = demo.start_demo(work, opendota_daily=2)
    prepare(svc.addr)

    share = args.connections // 3
    plan = [
        ("ready", [f"/api/matches/{READY_MATCH}"], [200], share),
        ("failed", [f"/api/matches/{FAILED_MATCH}"], [404], share),
        ("queued", [f"/api/matches/{m}" for m in QUEUED_MATCHES], [202],
         args.connections - 2 * share),
    ]
    load_before = common.load_average()
    running = [run_wrk(svc.addr, kind, paths, expect, conns, args.duration)
               for kind, paths, expect, conns in plan]
    kinds = {kind: dict(parse(kind, proc), connections=conns, paths=paths, expect=expect)
             for (kind, proc), (_, paths, expect, conns) in zip(running, plan)}
    queue = common.queue_status_now(svc.addr)
    result = {
        "connections": args.connections,
        "duration_s": args.duration,
        "kinds": kinds,
        "total_requests": sum(k["requests"] for k in kinds.values()),
        "unexpected": sum(k["unexpected"] for k in kinds.values()),
        "socket_errors": sum(sum(k["socket_errors"].values()) for k in kinds.values()),
        "queue_after": queue,
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    common.write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 1 if result["unexpected"] or result["socket_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
