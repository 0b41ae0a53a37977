#!/usr/bin/env python3
"""The chaos soak (issue 19, item 8): 3 instances of `serve --store nats` on a 3-node R3
JetStream cluster, a steady stream of team imports against the fixture upstream with a scripted
fault mix, and every 1-3 minutes one chaos action; at the end, the checks of
bench/soak_checks.py. Run through bench/soak.sh, which says how; this file is the timeline.

- Data: bench/soak_data.py, one new team per "new" import of the plan (6-26 matches, its own 5-7
  players, opponents shared by every team).
- Imports: the plan is drawn from the seed up front: about every `--import-every` seconds
  (uniform 0.5x-1.5x) a new team (60%), a repeat of an imported one (25%, which must fetch
  nothing) or a forced refresh of one (15%, `force=true`: everything refetched once). Each
  import goes to a random instance that is up and not frozen (as a load balancer with health
  checks would send it); a POST that fails (an instance killed under it, 503 while a node is
  down) is sent again to another, except a forced one that may have been taken (a timeout),
  which is counted as taken so the fetch check allows for it.
- Faults: before an import, each OpenDota path it will fetch for the first time (and, for a
  forced one, each of its OpenDota paths) gets 0-3 scripted faults (each further one with
  probability FAULT_SHARE, kinds as in tests/it/fault_mix.rs), so every resource has a good
  answer within `--max-attempts` (12): every import is expected to complete. Dotabuff pages get
  none (a 5xx there pauses the source for 15 minutes by design, and the imports would fall back
  to OpenDota's team list, which this data set does not have).
- Chaos: after a pause of uniform(lo, hi) seconds (60-180 for a 30-minute run, scaled down for
  shorter ones but never under 20-60), one action, drawn from a seeded shuffled bag of the three
  kinds so a short run sees each: kill -9 an instance and restart it after 1-5 s (slots 1 and 2
  only: slot 0 is never killed, so one RSS series spans the whole run), kill -9 a NATS node and
  restart it after 5-15 s, or SIGSTOP an instance for 20 s. No action starts unless it ends
  before the run does.
- Every RSS_EVERY_S: each instance's RSS (/proc), its upstream 429 count and a few gauges
  (/metrics: hot cache bytes, redb file size, replica changes; `gauges` in the result).
- Timings: every import's POST time, instance and completion time are in the result
  (`imports`); one still running TRACE_AFTER_S after its POST gets its progress on every
  instance traced, so a slow tail says what it waited for (a match or player, on which
  instances); the result's `t0Wall` is the run's start on the logs' clock.
- After `--minutes`: no new imports or actions; wait (at most the drain timeout) until every
  import says complete, then the checks. Writes the result JSON; exits 1 if a check failed.

Usage: soak.py OUT.json [--minutes 30] [--seed N] [--work DIR] [--per-min 300]
                        [--import-every 12]
"""

import argparse
import os
import random
import sys
import threading
import time

import common
import scaleout
import soak_checks
import soak_data
import soak_fleet

LATENCY_MS = 50
FAULT_SHARE = 0.3
MAX_FAULTS_PER_PATH = 3
HANG_MS = 300
FAULTS = [{"status": 500}, {"status": 503}, {"kind": "truncate"}, {"kind": "html"},
          {"kind": "reset"}, {"kind": "hang", "ms": HANG_MS}]
KINDS = (("new", 0.60), ("again", 0.25), ("force", 0.15))
FREEZE_S = 20
RSS_EVERY_S = 10
POLL_EVERY_S = 1.0
# An import still running this long after its POST gets its progress on every instance
# traced (in the result's `imports`) every TRACE_EVERY_S, to tell what it waits for.
TRACE_AFTER_S = 30
TRACE_EVERY_S = 10
CLIENT_TIMEOUT_S = 5
# How long a POST keeps being retried on other instances (a node restart takes seconds).
POST_PATIENCE_S = 90
# The longest an action may take, so that none starts unless it ends before the run does.
ACTION_MAX_S = 40


class Soak:
    def __init__(self, args):
        self.args = args
        # One generator per concern, so the threads' timing never changes another's draws:
        # the plan, faults and chaos of a seed are the same in every run.
        self.rng = random.Random(args.seed)  # which instance serves a request
        self.fault_rng = random.Random(args.seed ^ 0xFA17)
        self.chaos_rng = random.Random(args.seed ^ 0xC4A0)
        self.duration = args.minutes * 60
        self.lock = threading.Lock()
        self.stop = threading.Event()  # the run's time is up: no new imports or actions
        self.done = threading.Event()  # the drain is over: stop watching and sampling
        self.posting = []  # threads of imports being posted
        self.imports = []   # dicts, see `_import`
        self.chaos = []     # dicts, see `_act`
        self.rss = []       # (t, slot, incarnation, kB)
        self.gauges = []    # (t, slot, incarnation, {metric: value}), soak_checks.GAUGES
        self.metrics_429 = {}  # (slot, incarnation) -> last seen count
        self.scripted = {}  # path -> faults scripted
        self.faults_refused = 0
        self.seen = set()   # OpenDota paths some earlier import fetches
        self.forced = {}    # team index -> forced imports taken (or maybe taken)
        self.t0 = None

    # ---- set-up -------------------------------------------------------------------------
    def plan(self):
        """The imports, drawn up front: (offset s, kind, team index)."""
        rng, plan, teams, t = random.Random(self.args.seed ^ 0x1F0), [], 0, 5.0
        last = self.duration - min(60.0, self.duration / 6)
        while t < last:
            kind = "new" if teams == 0 else rng.choices(*zip(*KINDS))[0]
            team = teams if kind == "new" else rng.randrange(teams)
            teams += kind == "new"
            plan.append((t, kind, team))
            t += self.args.import_every * rng.uniform(0.5, 1.5)
        return plan, teams

    def start(self):
        server, version = scaleout.find_server()
        work = self.args.work
        print(f"== data: generating", flush=True)
        self.import_plan, teams = self.plan()
        self.manifest = soak_data.generate(os.path.join(work, "data"), teams, self.args.seed)
        print(f"   {teams} teams, {self.manifest['files']} files, "
              f"{self.manifest['bytes'] / 1e6:.1f} MB; {len(self.import_plan)} imports planned")
        print(f"== cluster: 3 nodes, nats-server {version}", flush=True)
        self.cluster = soak_fleet.Cluster(work, server)
        self.fixture = common.start_fixture(work, LATENCY_MS, self.args.per_min,
                                            data_dir=os.path.join(work, "data"))
        self.instances = []
        for slot in range(3):
            argv = soak_fleet.instance_argv(common.BINARY, work, slot, self.cluster.url,
                                            self.fixture.addr, self.args.per_min)
            if slot == 0 and os.environ.get("SOAK_HEAPTRACK") == "1":
                # Diagnosis only: slot 0 (never killed) under heaptrack; its RSS includes
                # heaptrack's own, so the RSS check is read on the other slots then.
                argv = ["heaptrack", "-o", os.path.join(work, "heaptrack-i0")] + argv
            inst = soak_fleet.Instance(work, slot, argv)
            took = inst.start()  # one at a time: the first creates the R3 buckets
            print(f"   instance {slot} ready in {took:.1f} s on {inst.addr}", flush=True)
            self.instances.append(inst)

    def now(self):
        return time.monotonic() - self.t0

    def pick(self):
        """A random instance that is up and not frozen (None if there is none)."""
        live = [i for i in self.instances if i.addr and not i.frozen]
        return self.rng.choice(live) if live else None

    # ---- imports ------------------------------------------------------------------------
    def _faults_for(self, team, forced):
        paths = [p for p in team["paths"] if p.startswith("/opendota/")]
        if not forced:
            paths = [p for p in paths if p not in self.seen]
        self.seen.update(paths)
        for path in paths:
            n = 0
            while n < MAX_FAULTS_PER_PATH and self.fault_rng.random() < FAULT_SHARE:
                spec = dict(self.fault_rng.choice(FAULTS), path=path, count=1)
                if soak_checks.post_json(self.fixture.addr, "/_faults", spec) != 201:
                    self.faults_refused += 1  # e.g. the fixture's cap on live faults
                    break
                n += 1
            if n:
                self.scripted[path] = self.scripted.get(path, 0) + n

    def _import(self, kind, index):
        team = self.manifest["teams"][index]
        path = f"/api/teams/{team['teamId']}/matches?leagueId={team['leagueId']}"
        self._faults_for(team, kind == "force")
        record = {"t": round(self.now(), 1), "kind": kind, "team": index, "posts": [],
                  "accepted": False, "completeAt": None}
        with self.lock:
            self.imports.append(record)
        deadline = time.monotonic() + POST_PATIENCE_S
        while time.monotonic() < deadline and not self.stop.is_set():
            inst = self.pick()
            if inst is None:
                time.sleep(1)
                continue
            query = "&force=true" if kind == "force" else ""
            status, _ = common.request("POST", inst.addr, path + query, timeout=CLIENT_TIMEOUT_S)
            record["posts"].append([inst.slot, status])
            if status in (200, 202) or (status == 0 and kind == "force"):
                # A forced POST that timed out may have been taken: counted as taken.
                record["accepted"] = status != 0
                if kind == "force":
                    self.forced[index] = self.forced.get(index, 0) + 1
                return
            time.sleep(1)

    def importer(self):
        for offset, kind, index in self.import_plan:
            if self.stop.wait(max(0.0, offset - self.now())):
                return
            th = threading.Thread(target=self._import, args=(kind, index), daemon=True)
            th.start()
            self.posting.append(th)

    def pending(self):
        with self.lock:
            return [r for r in self.imports if r["completeAt"] is None]

    def watcher(self):
        """Marks imports complete when a live instance says so."""
        while not self.done.is_set():
            for record in self.pending():
                inst = self.pick()
                if inst is None:
                    break
                team = self.manifest["teams"][record["team"]]
                if soak_checks.complete(soak_checks.progress(inst.addr, team, CLIENT_TIMEOUT_S)):
                    record["completeAt"] = round(self.now(), 1)
                elif self.now() - record["t"] >= TRACE_AFTER_S \
                        and self.now() - record.get("tracedAt", 0) >= TRACE_EVERY_S:
                    self._trace(record, team)
            self.done.wait(POLL_EVERY_S)

    def _trace(self, record, team):
        """A slow import's progress on every live instance: which one lags, and on what."""
        record["tracedAt"] = now = round(self.now(), 1)
        for inst in self.instances:
            p = soak_checks.progress(inst.addr, team, CLIENT_TIMEOUT_S) if not inst.frozen \
                else None
            if p:
                record.setdefault("trace", []).append(
                    [now, inst.slot, p.get("matchesReady"), p.get("matchesTotal"),
                     p.get("playersReady"), p.get("playersTotal"), p.get("failed", 0)])

    # ---- chaos --------------------------------------------------------------------------
    def _act(self, kind):
        action = {"t": round(self.now(), 1), "kind": kind, "wallStart": time.time()}
        try:
            self._chaos(kind, action)
        except Exception as e:  # a restart that never became ready: the check reports it
            action["error"] = f"{type(e).__name__}: {e}"
        action["tookS"] = round(self.now() - action["t"], 1)
        action["wallEnd"] = time.time()
        print(f"   chaos at {action['t']:7.1f} s: {kind} {action.get('target')} "
              f"(took {action['tookS']} s){' ERROR ' + action['error'] if 'error' in action else ''}",
              flush=True)
        self.chaos.append(action)

    def _chaos(self, kind, action):
        rng = self.chaos_rng
        if kind == "kill_instance":
            inst = self.instances[rng.choice((1, 2))]
            down = rng.uniform(1, 5)
            action.update(target=f"i{inst.slot}", downS=round(down, 1))
            inst.kill()
            time.sleep(down)
            action["readyS"] = round(inst.start(), 1)
        elif kind == "kill_node":
            node = rng.randrange(soak_fleet.NODES)
            down = rng.uniform(5, 15)
            action.update(target=f"n{node}", downS=round(down, 1))
            self.cluster.kill(node)
            time.sleep(down)
            action["healthyS"] = round(self.cluster.restart(node), 1)
        else:
            inst = self.instances[rng.randrange(3)]
            action.update(target=f"i{inst.slot}", downS=FREEZE_S)
            inst.freeze(FREEZE_S)

    def chaos_loop(self):
        lo = min(60.0, max(20.0, 2.0 * self.args.minutes))
        bag = []
        while True:
            pause = self.chaos_rng.uniform(lo, 3 * lo)
            if self.now() + pause + ACTION_MAX_S > self.duration or self.stop.wait(pause):
                return
            if not bag:
                bag = ["kill_instance", "kill_node", "freeze"]
                self.chaos_rng.shuffle(bag)
            self._act(bag.pop())

    # ---- measurements -------------------------------------------------------------------
    def sampler(self):
        """RSS and the upstream 429 count of every instance, until the drain is over."""
        while True:
            t = round(self.now(), 1)
            for inst in self.instances:
                rss = inst.rss_kb()
                if rss is not None:
                    self.rss.append((t, inst.slot, inst.incarnation, rss))
                addr = inst.addr
                if addr and not inst.frozen:
                    scraped = soak_checks.scrape(addr)
                    if scraped is not None:
                        self.metrics_429[f"i{inst.slot}-{inst.incarnation}"] = scraped[0]
                        self.gauges.append((t, inst.slot, inst.incarnation, scraped[1]))
            if self.done.is_set() or self.done.wait(RSS_EVERY_S):
                return

    # ---- the run ------------------------------------------------------------------------
    def run(self):
        self.t0 = time.monotonic()
        self.t0_wall = time.time()  # the logs' clock, for reading them beside the run's
        print(f"== soak: {self.args.minutes} min, seed {self.args.seed}", flush=True)
        workers = [threading.Thread(target=f, daemon=True) for f in (self.importer, self.chaos_loop)]
        monitors = [threading.Thread(target=f, daemon=True) for f in (self.watcher, self.sampler)]
        for th in workers + monitors:
            th.start()
        self.stop.wait(self.duration)
        self.stop.set()
        for th in workers + self.posting:
            th.join(timeout=ACTION_MAX_S + POST_PATIENCE_S)
        print(f"== drain: {len(self.pending())} imports still running", flush=True)
        deadline = time.monotonic() + self.args.drain_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(1)
        self.drained_at = round(self.now(), 1)
        self.done.set()
        for th in monitors:
            th.join(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--work", default=None)
    ap.add_argument("--per-min", type=int, default=300)
    ap.add_argument("--import-every", type=float, default=12)
    ap.add_argument("--drain-s", type=float, default=None)
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.randrange(2**32)
    if args.drain_s is None:
        args.drain_s = max(120.0, 10.0 * args.minutes)
    args.work = args.work or common.tempdir("soak")
    os.makedirs(args.work, exist_ok=True)
    print(f"soak seed: {args.seed} (replay the plan with SOAK_SEED={args.seed}); "
          f"logs in {args.work}", flush=True)
    soak = Soak(args)
    started = time.monotonic()
    soak.start()
    soak.run()
    result = soak_checks.evaluate(soak)
    for inst in soak.instances:
        inst.stop_wrapped()
    result["wallS"] = round(time.monotonic() - started, 1)
    common.write_json(args.out, result)
    soak_checks.print_summary(result)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
