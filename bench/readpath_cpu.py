#!/usr/bin/env python3
"""CPU per request on the small-body read path (issue 19): our service, one or more builds, and
the tuned nginx of bench/readpath.py, each under the same wrk load, with the CPU time (user +
system, from /proc) each server process spent during its run. Requests per second move with
whatever else the machine runs; CPU per request moves much less, so two builds measured in one
run compare even when other jobs compile beside them.

One run: the synthetic data set (bench/gen_league.py, 30 matches), the fixture upstream (from the
first build), one service per build (each with its own data directory), the player (~0.9 KB) and
the large match (~290 KB) stored through each, nginx serving the bytes the first build returned
(plain and gzip-6). Then `--rounds` rounds; in each, every row (player and match, plain and
`Accept-Encoding: gzip`) runs `wrk -t2 -c64 -d{duration}s` once against every server, the order
rotating from round to round. A row's figure is the median round. Every process is started here
and stopped on exit (common.py).

With `--bare BINARY` (target/release/examples/bare_warp) a bare warp server serving the same files
from memory runs as one more server: what warp and hyper alone cost here (issue 19's reference).

Usage: readpath_cpu.py OUT.json NAME=BINARY [NAME=BINARY ...] [--duration 8] [--rounds 3]
                       [--bare BINARY]
"""

import argparse
import gzip
import os
import statistics
import subprocess
import sys

import common
import gen_league
import readpath

ROWS = (("player", False), ("player", True), ("match", False), ("match", True))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / TICKS


def nginx_pids(daemon):
    """The nginx master and its workers."""
    out = subprocess.run(["pgrep", "-P", str(daemon.proc.pid)], capture_output=True, text=True)
    return [daemon.proc.pid] + [int(p) for p in out.stdout.split()]


def start_builds(builds, data):
    """One fixture upstream (first build) and one service per build; returns {name: svc}."""
    first = next(iter(builds.values()))
    common.BINARY = first
    work = common.tempdir("readpath-cpu")
    fixture = common.start_fixture(work, latency_ms=0, rate_limit_per_min=1_000_000, data_dir=data)
    services = {}
    for name, binary in builds.items():
        common.BINARY = binary
        own = common.tempdir(f"readpath-cpu-{name}")
        services[name] = common.start_service(own, fixture, opendota_per_min=1_000_000,
                                              dotabuff_per_min=60_000,
                                              extra=["--opendota-daily-limit", "10000000"])
    return work, services


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("builds", nargs="+", help="NAME=BINARY")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bare", help="the bare_warp example binary, run as one more server")
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.builds)
    if not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 10:
        sys.exit("--duration must be 1..60 and --rounds 1..10")

    data = os.path.join(common.tempdir("readpath-cpu-data"), "dataset")
    manifest = gen_league.generate(data, 30, 300)
    work, services = start_builds(builds, data)
    paths = {"player": f"/api/players/{manifest['playerId']}/data",
             "match": f"/api/matches/{manifest['largeMatchId']}"}
    root = os.path.join(work, "static")
    os.makedirs(root)
    os.chmod(work, 0o755)
    os.chmod(root, 0o755)
    for name, path in paths.items():
        saved = None
        for svc in services.values():
            got = readpath.store(svc.addr, path)
            saved = saved or got
        for suffix, body in (("", saved), (".gz", gzip.compress(saved, readpath.GZIP_LEVEL, mtime=0))):
            with open(os.path.join(root, f"{name}.json{suffix}"), "wb") as f:
                f.write(body)
            os.chmod(os.path.join(root, f"{name}.json{suffix}"), 0o644)
    nginx, nginx_addr, nginx_version = readpath.start_nginx(work, root)
    servers = {name: (svc.addr, paths, [svc.proc.pid]) for name, svc in services.items()}
    servers["nginx"] = (nginx_addr, {k: f"/{k}.json" for k in paths}, nginx_pids(nginx))
    if args.bare:
        bare, bare_addr = readpath.start_bare([args.bare], work, root)
        servers["bare-warp"] = (bare_addr, {k: f"/{k}.json" for k in paths}, [bare.proc.pid])
    wrk_args = argparse.Namespace(threads=2, connections=64, duration=args.duration)
    load = [common.load_average()]

    rows = []
    for body, accept_gzip in ROWS:
        row = {"body": body, "acceptGzip": accept_gzip, "rounds": []}
        order = list(servers)
        for i in range(args.rounds):
            one = {}
            for name in order[i % len(order):] + order[:i % len(order)]:
                addr, server_paths, pids = servers[name]
                before = cpu_seconds(pids)
                w = readpath.run_wrk(f"http://{addr}{server_paths[body]}", accept_gzip, wrk_args)
                cpu = cpu_seconds(pids) - before
                one[name] = {"requestsPerS": w["requestsPerS"], "requests": w["requests"],
                             "cpuS": round(cpu, 2),
                             "cpuUsPerRequest": round(cpu * 1e6 / max(1, w["requests"]), 2),
                             "p99Ms": w["latency_us"]["p99"] / 1000, "errors": w["errorsTotal"]}
            row["rounds"].append(one)
        for name in servers:
            per_req = [r[name]["cpuUsPerRequest"] for r in row["rounds"]]
            rate = [r[name]["requestsPerS"] for r in row["rounds"]]
            row[name] = {"cpuUsPerRequest": statistics.median(per_req),
                         "cpuUsRange": [min(per_req), max(per_req)],
                         "requestsPerS": statistics.median(rate)}
        label = f"{body} {'gzip' if accept_gzip else 'plain'}"
        print(f"  {label:13} " + "  ".join(
            f"{name} {row[name]['cpuUsPerRequest']:.1f} us/req ({row[name]['requestsPerS']:.0f}/s)"
            for name in servers), flush=True)
        rows.append(row)
    load.append(common.load_average())
    common.write_json(args.out, {"builds": builds, "bare": args.bare, "nginx": nginx_version,
                                 "wrk": "wrk -t2 -c64 -d%ds" % args.duration,
                                 "rounds": args.rounds, "loadAverage": load, "rows": rows})
    print(f"readpath_cpu: load {load[0]} -> {load[1]}; {args.out}")


if __name__ == "__main__":
    main()
