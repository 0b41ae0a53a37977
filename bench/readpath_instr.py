#!/usr/bin/env python3
"""Instructions per small-body GET (issue 19): each build, and optionally the bare warp reference
(bench/bare_warp.rs), runs under valgrind's callgrind, and for each row (the ~0.9 KB player and
the ~290 KB match, plain and `Accept-Encoding: gzip`) the process's instructions during
`wrk -t1 -c4 -d{duration}s` are counted, less those of the same time idle, and divided by the
requests wrk made. Instructions do not grow when other jobs share the CPU (CPU time does, and
this VM has no hardware counters), so two builds compare on a busy machine; they count user-space
work only: the kernel's share (the socket calls, the same for every server) is not in them.

One run: the synthetic data set (bench/gen_league.py, 30 matches), the fixture upstream (from the
first build, not under valgrind), each build's service under callgrind with its own data
directory, and the player and the match stored through each. Every process is started here and
stopped on exit (common.py).

Usage: readpath_instr.py OUT.json NAME=BINARY [NAME=BINARY ...] [--bare BINARY] [--duration 10]
"""

import argparse
import glob
import os
import subprocess
import time

import common
import gen_league
import readpath

ROWS = (("player", False), ("player", True), ("match", False), ("match", True))


def callgrind_argv(binary, out_dir):
    return ["valgrind", "--tool=callgrind", "--dump-instr=no",
            f"--callgrind-out-file={out_dir}/callgrind.out.%p", binary]


def dump_total(pid, out_dir):
    """Dumps the counters of `pid` now (callgrind_control) and returns the instructions since
    the last zeroing, from the new dump file."""
    before = set(glob.glob(f"{out_dir}/callgrind.out.{pid}*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(glob.glob(f"{out_dir}/callgrind.out.{pid}*")) - before
        for path in new:
            with open(path) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump from {pid}")


def zero(pid):
    subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True, timeout=120)


def wrk(url, accept_gzip, seconds):
    argv = ["wrk", "-t1", "-c4", f"-d{seconds}s"]
    if accept_gzip:
        argv += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + 120)
    for line in out.stdout.splitlines():
        parts = line.split()
        if "requests" in parts and "in" in parts:
            return int(parts[0])
    raise RuntimeError(f"wrk printed no request count:\n{out.stdout}\n{out.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("builds", nargs="+", help="NAME=BINARY")
    ap.add_argument("--bare", help="the bare_warp example binary, measured as one more server")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.builds)
    common.START_TIMEOUT_S = 300

    data = os.path.join(common.tempdir("readpath-instr-data"), "dataset")
    manifest = gen_league.generate(data, 30, 300)
    common.BINARY = next(iter(builds.values()))
    work = common.tempdir("readpath-instr")
    fixture = common.start_fixture(work, latency_ms=0, rate_limit_per_min=1_000_000, data_dir=data)
    paths = {"player": f"/api/players/{manifest['playerId']}/data",
             "match": f"/api/matches/{manifest['largeMatchId']}"}
    servers = {}
    saved = {}
    for name, binary in builds.items():
        own = common.tempdir(f"readpath-instr-{name}")
        wrapper = os.path.join(own, "under-callgrind.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(callgrind_argv(binary, own)) + ' "$@"\n')
        os.chmod(wrapper, 0o755)
        common.BINARY = wrapper
        svc = common.start_service(own, fixture, opendota_per_min=1_000_000,
                                   dotabuff_per_min=60_000,
                                   extra=["--opendota-daily-limit", "10000000"])
        for key, path in paths.items():
            saved[key] = readpath.store(svc.addr, path)
        servers[name] = (svc.addr, paths, svc.proc.pid, own)
    if args.bare:
        root = os.path.join(work, "static")
        os.makedirs(root)
        import gzip as gz
        for key, body in saved.items():
            with open(os.path.join(root, f"{key}.json"), "wb") as f:
                f.write(body)
            with open(os.path.join(root, f"{key}.json.gz"), "wb") as f:
                f.write(gz.compress(body, readpath.GZIP_LEVEL, mtime=0))
        bare, addr = readpath.start_bare(callgrind_argv(args.bare, work), work, root, 120)
        servers["bare-warp"] = (addr, {k: f"/{k}.json" for k in paths}, bare.proc.pid, work)

    load = [common.load_average()]
    rows = []
    for body, accept_gzip in ROWS:
        row = {"body": body, "acceptGzip": accept_gzip}
        for name, (addr, server_paths, pid, out_dir) in servers.items():
            zero(pid)
            requests = wrk(f"http://{addr}{server_paths[body]}", accept_gzip, args.duration)
            busy = dump_total(pid, out_dir)
            zero(pid)
            time.sleep(args.duration)
            idle = dump_total(pid, out_dir)
            row[name] = {"requests": requests, "instructions": busy, "idleInstructions": idle,
                         "perRequest": round((busy - idle) / max(1, requests))}
        label = f"{body} {'gzip' if accept_gzip else 'plain'}"
        print(f"  {label:13} " + "  ".join(
            f"{name} {row[name]['perRequest'] / 1000:.1f}k instr/req ({row[name]['requests']} req)"
            for name in servers), flush=True)
        rows.append(row)
    load.append(common.load_average())
    common.write_json(args.out, {"builds": builds, "bare": args.bare,
                                 "wrk": f"wrk -t1 -c4 -d{args.duration}s", "loadAverage": load,
                                 "rows": rows})
    print(f"readpath_instr: load {load[0]} -> {load[1]}; {args.out}")


if __name__ == "__main__":
    main()
