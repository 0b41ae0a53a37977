#!/usr/bin/env python3
"""Replica start-up benchmark (issue 19, item 5): with `--store nats`, how long an instance takes
after a restart to be ready and to serve what changed while it was down, with N resources in
the shared store, for two binaries side by side: BASE (replays the whole data bucket at every
start) and NEW (resumes the watch after the last revision its replica applied).

Per N (default 10,000 and 100,000): a fresh 3-node cluster at R3; N small player resources
(~200-byte bodies) written by bench/fill_shared.rs exactly as an instance stores them; one NEW
instance started on an empty data dir replays the bucket (the new-instance case, timed until
its log says the replay caught up); stopped (SIGTERM); its data dir copied once per binary. Then ROUNDS
rounds: K resources get a new version while no instance runs, then each binary is restarted on
its own copy (order alternating per round) and timed from spawn:
  ready    /readyz answers 200 (polled every 5 ms);
  current  GET of the last changed resource serves its new version (polled every 5 ms): the
           watch delivers in revision order and the changed records are the newest, so this is
           when the replica has caught up;
  cpu      the process's user+system CPU seconds at that moment (/proc).
NEW also logs how many records its restart read. Medians over the rounds, BASE/NEW ratios.

Usage: replica_restart.py OUT.json --base BIN --new BIN --fill BIN [--counts 10000,100000]
                          [--changes 100] [--rounds 3] [--keep]
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import time

import common
import scaleout

FIRST = 600_000_000
POLL_S = 0.005
CURRENT_TIMEOUT_S = 900


def cpu_seconds(pid):
    """User + system CPU of `pid` so far, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(args, cluster, first, count, version):
    out = subprocess.run([args.fill, "--nats-url", cluster.url, "--replicas", "3",
                          "--first", str(first), "--count", str(count), "--version", str(version)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def serves(addr, player, version):
    status, body = common.request("GET", addr, f"/api/players/{player}/data", timeout=5)
    return status == 200 and isinstance(body, dict) and body.get("version") == version


def start(binary, name, work, data_dir, cluster):
    # Upstreams on a closed local port: nothing here may reach the real APIs.
    argv = [binary, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
            "--store", "nats", "--nats-url", cluster.url, "--nats-replicas", "3",
            "--opendota-url", "http://127.0.0.1:9/opendota",
            "--dotabuff-url", "http://127.0.0.1:9/dotabuff"]
    t0 = time.monotonic()
    svc = common.Child(name, argv, os.path.join(work, f"{name}.log"), data_dir=data_dir)
    return svc, t0


def timed_start(binary, name, work, data_dir, cluster, player, version):
    """Starts `binary`; seconds from spawn to /readyz 200 and until it is current: `player`
    served at `version` (a resource its replica already holds at an older version, so the GET
    never queues a fetch), or, with `player` None, its log saying the replay caught up."""
    svc, t0 = start(binary, name, work, data_dir, cluster)
    log_path = os.path.join(work, f"{name}.log")
    ready = None
    deadline = t0 + CURRENT_TIMEOUT_S
    while True:
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{name}: not current within {CURRENT_TIMEOUT_S} s")
        if ready is None and common.request("GET", svc.addr, "/readyz", timeout=5)[0] == 200:
            ready = time.monotonic() - t0
        caught_up = (serves(svc.addr, player, version) if player is not None
                     else resumed_line(log_path) is not None)
        if ready is not None and caught_up:
            current = time.monotonic() - t0
            break
        time.sleep(POLL_S)
    cpu = cpu_seconds(svc.proc.pid)
    svc.stop()
    return {"ready_s": round(ready, 3), "current_s": round(current, 3), "cpu_s": round(cpu, 2),
            "log": resumed_line(os.path.join(work, f"{name}.log"))}


def resumed_line(log_path):
    """The NEW binary's last line about its replay (how many records it read), if any."""
    line = None
    with open(log_path, errors="replace") as f:
        for l in f:
            if "replica resumed" in l or "replica replayed" in l:
                line = re.sub(r"\x1b\[[0-9;]*m", "", l).strip()
    return line


def one_count(args, n, server):
    work = common.tempdir(f"replica-{n}")
    cluster = scaleout.Cluster(os.path.join(work, "cluster"), server)
    result = {"resources": n, "fill": fill(args, cluster, FIRST, n, 1)}
    print(f"replica_restart: {n} filled {result['fill']}", flush=True)
    seed = os.path.join(work, "seed")
    result["first_start_new"] = timed_start(args.new, "first-new", work, seed, cluster, None, 1)
    print(f"replica_restart: {n} first start NEW {result['first_start_new']}", flush=True)
    dirs = {}
    for which in ("base", "new"):
        dirs[which] = os.path.join(work, f"data-{which}")
        shutil.copytree(seed, dirs[which])
    rounds = []
    for r in range(args.rounds):
        version = r + 2
        fill(args, cluster, FIRST, args.changes, version)
        changed = FIRST + args.changes - 1
        order = ("base", "new") if r % 2 == 0 else ("new", "base")
        row = {}
        for which in order:
            binary = args.base if which == "base" else args.new
            row[which] = timed_start(binary, f"{which}-r{r}", work, dirs[which], cluster,
                                     changed, version)
        print(f"replica_restart: {n} round {r + 1}: {row}", flush=True)
        rounds.append(row)
    result["rounds"] = rounds
    med = {w: {k: statistics.median(row[w][k] for row in rounds)
               for k in ("ready_s", "current_s", "cpu_s")} for w in ("base", "new")}
    result["median"] = med
    result["ratio_current_base_over_new"] = round(med["base"]["current_s"] /
                                                  max(med["new"]["current_s"], 1e-9), 1)
    cluster.stop()
    if args.keep:
        common._tempdirs.remove(work)
        print(f"replica_restart: kept {work}", flush=True)
    else:
        common.remove_tempdir(work)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--base", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--fill", required=True)
    p.add_argument("--counts", default="10000,100000")
    p.add_argument("--changes", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, data dirs)")
    args = p.parse_args()
    args.base, args.new, args.fill = map(os.path.abspath, (args.base, args.new, args.fill))
    server, version = scaleout.find_server()
    started = time.monotonic()
    results = [one_count(args, int(n), server) for n in args.counts.split(",")]
    out = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "nats_server": version, "changes": args.changes, "rounds": args.rounds,
           "load_average": common.load_average(), "results": results,
           "seconds": round(time.monotonic() - started)}
    common.write_json(args.out, out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
