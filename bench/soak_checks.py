"""The chaos soak's end checks (bench/soak.py) and its result: what each check reads, its
numbers, and pass or fail. Every check reads what a user or an operator could read: the team
views and bodies the API serves, the fixture upstream's request counts (`/_stats`), `/metrics`,
/proc and the logs.

1. imports: every imported team's view, on every instance, lists exactly the team's matches and
   players, all ready, none failed (every resource had a good answer within its attempts, see
   soak.py); and every body served by one instance is the fixture's file (no corrupt body).
2. fetches: per upstream path, the answers the file gave (`requests - faulted - rateLimited`)
   are at most 1 + the forced refreshes of the teams that contain it; the extra answers are the
   redelivery, at most REDELIVERY_MAX of all file answers. No path outside the imported teams.
3. no429: the fixture answered no 429 (and the instances' `dota_upstream_requests_total
   {status_class="429"}` agrees, as far as it survived the kills).
4. rss: for every incarnation that ran from its warm-up mark (minute 10, or half of a shorter
   run; counted from its own start for a restarted one) for at least half a warm-up more,
   the RSS at the end (median of the last 3 samples) is less than RSS_GROWTH_MAX above the RSS
   at the mark (median of the first 3 samples from there); RSS_GROWTH_MAX_SHORT for a run
   shorter than SHORT_RUN_S. The instances run with small caches (soak_fleet.HOT_CACHE_MB,
   STORE_CACHE_MB), so growth after the mark is not a cache filling: with the 64 MiB
   defaults, redb's page cache took in the whole replica file (15-27 MB by the end) and RSS
   grew 21-34% with it. Beside the growth, each entry says what grew with it (the hot
   cache's bytes and the redb file, from /metrics), so a failure can be read at once.
5. logs: every ERROR line and panic in every incarnation's log matches ALLOWED, where each
   entry says why that error is expected under this chaos; anything else fails.
6. chaos: every killed instance or node came back (ready, healthy) within its timeout.
"""

import datetime
import http.client
import json
import os
import re
import statistics

import common

REDELIVERY_MAX = 0.01
# A short run fetches ~400 resources, so 1% is 4 calls, and one node kill can cost 5 (calls
# in flight, writes past the pipeline's patience): CI's 3 minutes are held to 3%.
REDELIVERY_MAX_SHORT = 0.03
RSS_GROWTH_MAX = 0.10
# Runs shorter than SHORT_RUN_S (CI's 3 minutes) are warm-up from end to end: the replica and
# the store's page cache grow with every import, so flat RSS cannot be asked of them. They are
# held to RSS_GROWTH_MAX_SHORT from half the run, which still catches a gross leak (debug
# build, 3 minutes: +6% to +15% measured from minute 1).
SHORT_RUN_S = 600
RSS_GROWTH_MAX_SHORT = 0.25
CLIENT_TIMEOUT_S = 10
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ERROR_LINE = re.compile(r"^\S+\s+ERROR\s|panicked at|^thread '.*' panicked")

# Errors the chaos explains: (pattern, the chaos action that explains it, why). A line is
# allowed only when it matches and was logged while such an action ran or within ALLOW_AFTER_S
# after it ended; the same error at any other time is unexplained and fails the run.
ALLOW_AFTER_S = 60
ALLOWED = [
    # A node kill moves the job stream's leader: a pull consumer ends with 409 "Leadership
    # Change" (or 503 while there is no leader), and the dispatcher restarts its actor.
    (r"dispatcher lost its queue; restarting the actor .*(409, Some\(\"Leadership Change\"\)|"
     r"503, None|timed out)", "kill_node", "job stream leader moved: dispatcher restarted"),
    # A request that queues a job while the job stream elects a leader gets a 503 (logged by
    # the pipeline, the reply and warp's trace) and its claim is released; clients retry.
    (r"could not queue job; releasing its claim .*(no stream found|timed out|no responders)",
     "kill_node", "job not queued during the election: claim released, request answered 503"),
    (r"request failed error=could not queue the fetch", "kill_node",
     "job not queued during the election: claim released, request answered 503"),
    # Worded "unable to process request status=503" since the request span logs 5xx (51d0ddc).
    (r"unable to process request (\(internal error\) )?status=503", "kill_node",
     "job not queued during the election: claim released, request answered 503"),
    # DOTA_EVENTS has no leader for a moment: the event goes out on core NATS only.
    (r"event not stored in the stream; publishing it on core NATS only", "kill_node",
     "event stream without a leader: event sent on core NATS only"),
    # The claims bucket does not answer during the election: the job is nak'ed before it
    # calls the upstream.
    (r"could not read the claims", "kill_node", "claims bucket unavailable: job retried"),
    # A write that failed for longer than the pipeline's patience (20 s): the job is retried,
    # at the cost of an upstream call that the fetch check counts.
    (r"could not store the (result|failure); will retry", "kill_node",
     "shared store unavailable past the write patience: job retried"),
    # The driver's polls time out (10 s) on a frozen instance and close their connections; at
    # SIGCONT hyper finds them closed mid-request and warp logs it at ERROR.
    (r"server connection error: hyper::Error\(IncompleteMessage\)", "freeze",
     "clients gave up on a frozen instance: connections closed mid-request"),
]


def post_json(addr, path, body):
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=CLIENT_TIMEOUT_S)
    try:
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def team_path(team):
    return f"/api/teams/{team['teamId']}/matches?leagueId={team['leagueId']}"


def progress(addr, team, timeout):
    if not addr:
        return None
    status, body = common.request("GET", addr, team_path(team) + "&include=progress",
                                  timeout=timeout)
    return (body or {}).get("progress") if status == 200 else None


def complete(p):
    return bool(p) and p.get("matchesTotal", 0) > 0 and p["matchesReady"] == p["matchesTotal"] \
        and p["playersReady"] == p["playersTotal"] and p.get("failed", 0) == 0


# Sampled with RSS (summed over their labels): what the service holds in memory and on disk,
# so that RSS growth can be set beside what grew.
GAUGES = ("dota_hot_cache_bytes", "dota_hot_cache_entries", "dota_store_size_bytes",
          "dota_replica_changes_total", "dota_queue_in_flight", "dota_jobs_completed_total",
          "dota_shared_budget_grants_total", "dota_shared_budget_fallbacks_total",
          "dota_import_repairs_total")


def scrape(addr):
    """This instance's `/metrics`: its upstream 429 count
    (`dota_upstream_requests_total{status_class="429"}`) and the GAUGES; None if unreachable."""
    try:
        conn = common.keepalive(addr)
        conn.timeout = 2
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except (OSError, http.client.HTTPException):
        return None
    n429, gauges = 0, {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        base = name.split("{", 1)[0]
        if base == "dota_upstream_requests_total" and 'status_class="429"' in name:
            n429 += float(value)
        elif base in GAUGES:
            gauges[base] = gauges.get(base, 0) + float(value)
    return int(n429), gauges


# ---- 1. imports ------------------------------------------------------------------------
def view_problems(addr, team):
    status, view = common.request("GET", addr, team_path(team), timeout=CLIENT_TIMEOUT_S)
    if status != 200 or not isinstance(view, dict):
        return [f"GET answered {status}"]
    problems = []
    p = view.get("progress") or {}
    if not complete(p):
        problems.append(f"progress {p}")
    if sorted(view.get("matchIds") or []) != sorted(team["matches"]):
        problems.append(f"matchIds {len(view.get('matchIds') or [])} != {len(team['matches'])}")
    if len(view.get("matches") or []) != len(team["matches"]):
        problems.append(f"{len(view.get('matches') or [])} match summaries")
    if len(view.get("players") or []) != len(team["players"]) \
            or p.get("playersTotal") != len(team["players"]):
        listed = {str(x.get("accountId")) for x in view.get("players") or []}
        missing = [x for x in team["players"] if x not in listed]
        problems.append(f"{len(listed)} player summaries, playersTotal {p.get('playersTotal')}, "
                        f"expected {len(team['players'])}; not ready: {missing[:12]}")
    return problems


def corrupt_bodies(soak, teams):
    """Bodies served by one instance that differ from the fixture's files (parsed JSON)."""
    inst = soak.rng.choice([i for i in soak.instances if i.addr])
    data = os.path.join(soak.args.work, "data")
    ids = sorted({("matches", m) for t in teams for m in t["matches"]}
                 | {("players", p) for t in teams for p in t["players"]})
    conn, bad = common.keepalive(inst.addr), []
    for kind, rid in ids:
        api = f"/api/matches/{rid}" if kind == "matches" else f"/api/players/{rid}/data"
        try:
            conn.request("GET", api)
            resp = conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = common.keepalive(inst.addr)
            bad.append(f"{api}: no answer")
            continue
        with open(os.path.join(data, "opendota", kind, f"{rid}.json"), "rb") as f:
            want = json.load(f)
        try:
            ok = resp.status == 200 and json.loads(body) == want
        except ValueError:
            ok = False
        if not ok:
            bad.append(f"{api}: {resp.status}")
    conn.close()
    return {"instance": f"i{inst.slot}", "bodies": len(ids), "corrupt": bad[:10],
            "corruptCount": len(bad)}


def check_imports(soak):
    teams = sorted({r["team"] for r in soak.imports})
    problems = []
    for index in teams:
        team = soak.manifest["teams"][index]
        for inst in soak.instances:
            for p in view_problems(inst.addr, team):
                problems.append(f"team {team['teamId']} on i{inst.slot}: {p}")
    by_kind = {}
    for r in soak.imports:
        k = by_kind.setdefault(r["kind"], {"imports": 0, "completed": 0, "secondsToComplete": []})
        k["imports"] += 1
        if r["completeAt"] is not None:
            k["completed"] += 1
            k["secondsToComplete"].append(max(0.0, r["completeAt"] - r["t"]))
    for k in by_kind.values():
        s = sorted(k.pop("secondsToComplete"))
        if s:
            k["completeS"] = {"median": round(statistics.median(s), 1),
                              "p95": round(common.percentile(s, 95), 1), "max": round(s[-1], 1)}
    bodies = corrupt_bodies(soak, [soak.manifest["teams"][i] for i in teams])
    incomplete = sum(1 for r in soak.imports if r["completeAt"] is None)
    # Children of stalled imports that TeamWatch queued again (lost work it caught): reported,
    # not failed on, since the import completes; the last sample of each incarnation.
    last = {}
    for _, slot, inc, g in soak.gauges:
        if "dota_import_repairs_total" in g:
            last[(slot, inc)] = g["dota_import_repairs_total"]
    return {"passed": not problems and incomplete == 0 and bodies["corruptCount"] == 0,
            "repairsSampled": int(sum(last.values())),
            "teams": len(teams), "byKind": by_kind, "incompleteAtDrain": incomplete,
            "viewProblems": problems[:20], "viewProblemCount": len(problems),
            "bodies": bodies, "postErrors": sum(1 for r in soak.imports
                                                for _, st in r["posts"] if st not in (200, 202))}


# ---- 2. fetches, 3. 429s -----------------------------------------------------------------
def check_fetches(soak, stats):
    teams = {r["team"] for r in soak.imports}
    allowed = {}
    for index in teams:
        team = soak.manifest["teams"][index]
        for path in team["paths"]:
            allowed[path] = allowed.get(path, 1) + soak.forced.get(index, 0)
    served, extra, unexpected, missing, over = 0, 0, [], [], []
    for path, s in stats["paths"].items():
        n = s["requests"] - s.get("faulted", 0) - s["rateLimited"]
        served += n
        if path not in allowed:
            unexpected.append(path)
        elif n > allowed[path]:
            extra += n - allowed[path]
            over.append(f"{path}: {n} > {allowed[path]}")
    missing = [p for p in allowed if p not in stats["paths"]]
    ratio = extra / served if served else 0.0
    limit = REDELIVERY_MAX if soak.duration >= SHORT_RUN_S else REDELIVERY_MAX_SHORT
    faulted = stats.get("faulted", 0)
    return {"passed": ratio <= limit and not unexpected and not missing, "limitPct": 100 * limit,
            "fileAnswers": served, "allowed": sum(allowed.values()),
            "forcedRefreshes": sum(soak.forced.values()), "extra": extra,
            "redeliveryPct": round(100 * ratio, 3), "overAllowed": over[:20],
            "unexpectedPaths": unexpected[:20], "missingPaths": missing[:20],
            "faultsScripted": sum(soak.scripted.values()), "faultsServed": faulted,
            "faultsRefused": soak.faults_refused,
            "upstreamAnswers": stats["total"]}


def check_429(soak, stats):
    service = sum(soak.metrics_429.values())
    # Calls granted on the budget's fallback share while its counters were unreachable (node
    # kills): the last sample of each incarnation, so a few granted just before a kill may be
    # missing.
    last = {}
    for _, slot, inc, g in soak.gauges:
        if "dota_shared_budget_fallbacks_total" in g:
            last[(slot, inc)] = g
    fallbacks = sum(g["dota_shared_budget_fallbacks_total"] for g in last.values())
    grants = sum(g.get("dota_shared_budget_grants_total", 0) for g in last.values())
    return {"passed": stats["rateLimited"] == 0 and service == 0,
            "fixture429": stats["rateLimited"], "service429SeenInMetrics": service,
            "budgetGrantsSampled": int(grants), "fallbackGrantsSampled": int(fallbacks)}


# ---- 4. RSS ---------------------------------------------------------------------------------
def _gauge_at(gauges, name, at, which):
    """The median of `name` over the 3 samples of `gauges` from `at` (which="first") or up to
    it (which="last"), in MB; None without samples."""
    points = [(t, g[name]) for t, g in gauges if name in g]
    points = [p for p in points if p[0] >= at] if which == "first" else \
        [p for p in points if p[0] <= at]
    points = points[:3] if which == "first" else points[-3:]
    return round(statistics.median(v for _, v in points) / 1e6, 2) if points else None


def check_rss(soak):
    warm = min(600.0, soak.duration / 2)
    limit = RSS_GROWTH_MAX if soak.duration >= SHORT_RUN_S else RSS_GROWTH_MAX_SHORT
    series, gauges = {}, {}
    for t, slot, inc, kb in soak.rss:
        series.setdefault(f"i{slot}-{inc}", []).append((t, kb))
    for t, slot, inc, g in soak.gauges:
        gauges.setdefault(f"i{slot}-{inc}", []).append((t, g))
    out, passed = {}, True
    for name, points in sorted(series.items()):
        # The first incarnations' mark is counted from the run's start, a restart's from its own.
        start = 0.0 if name.split("-")[1] == "1" else points[0][0]
        window = [(t, kb) for t, kb in points if t >= start + warm]
        entry = {"samples": len(points), "firstMB": round(points[0][1] / 1024, 1),
                 "maxMB": round(max(kb for _, kb in points) / 1024, 1),
                 "endMB": round(points[-1][1] / 1024, 1), "fromS": points[0][0],
                 "toS": points[-1][0]}
        if len(window) >= 6 and window[-1][0] - window[0][0] >= warm / 2:
            at_mark = statistics.median(kb for _, kb in window[:3])
            at_end = statistics.median(kb for _, kb in window[-3:])
            growth = at_end / at_mark - 1
            entry.update(markS=window[0][0], atMarkMB=round(at_mark / 1024, 1),
                         atEndMB=round(at_end / 1024, 1), growthPct=round(100 * growth, 1),
                         passed=growth < limit)
            g = gauges.get(name, [])
            for key, metric in (("hotCacheMB", "dota_hot_cache_bytes"),
                                ("storeFileMB", "dota_store_size_bytes")):
                entry[key] = [_gauge_at(g, metric, window[0][0], "first"),
                              _gauge_at(g, metric, window[-1][0], "last")]
            passed &= growth < limit
        else:
            entry["judged"] = "too short after its warm-up"
        entry["series"] = [[t, round(kb / 1024, 1)] for t, kb in points]
        out[name] = entry
    judged = [e for e in out.values() if "growthPct" in e]
    return {"passed": passed and bool(judged), "warmUpS": warm, "limitPct": 100 * limit,
            "incarnations": out}


# ---- 5. logs, 6. chaos ------------------------------------------------------------------------
def _log_time(line):
    try:
        return datetime.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")) \
            .timestamp()
    except ValueError:
        return None


def _explained(line, windows):
    """The reason an allowed error was logged, or None."""
    at = _log_time(line)
    for pattern, kind, why in ALLOWED:
        if re.search(pattern, line) and at is not None and any(
                k == kind and start - 1 <= at <= end + ALLOW_AFTER_S for k, start, end in windows):
            return why
    return None


def check_logs(soak):
    windows = [(a["kind"], a["wallStart"], a["wallEnd"]) for a in soak.chaos]
    allowed = {why: 0 for _, _, why in ALLOWED}
    unexplained, lines = [], 0
    for inst in soak.instances:
        for inc, path, _ in inst.logs:
            with open(path, errors="replace") as f:
                for raw in f:
                    line = ANSI.sub("", raw.rstrip("\n"))
                    lines += 1
                    if not ERROR_LINE.search(line):
                        continue
                    why = _explained(line, windows)
                    if why is None:
                        unexplained.append(f"i{inst.slot}-{inc}: {line[:400]}")
                    else:
                        allowed[why] += 1
    return {"passed": not unexplained, "logLines": lines,
            "allowed": {w: n for w, n in allowed.items() if n},
            "unexplained": unexplained[:30], "unexplainedCount": len(unexplained),
            "natsErrLines": soak.cluster.err_lines()}


def check_chaos(soak):
    failed = [a for a in soak.chaos if "error" in a]
    kinds = {}
    for a in soak.chaos:
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    return {"passed": not failed, "actions": len(soak.chaos), "byKind": kinds,
            "failed": failed, "log": soak.chaos}


def evaluate(soak):
    stats = common.fixture_stats(soak.fixture)
    checks = {
        "imports": check_imports(soak),
        "fetches": check_fetches(soak, stats),
        "no429": check_429(soak, stats),
        "rss": check_rss(soak),
        "logs": check_logs(soak),
        "chaos": check_chaos(soak),
    }
    return {"seed": soak.args.seed, "minutes": soak.args.minutes, "binary": common.BINARY,
            "perMin": soak.args.per_min, "importEveryS": soak.args.import_every,
            "drainedAtS": soak.drained_at, "loadAverage": common.load_average(),
            "t0Wall": soak.t0_wall,
            "passed": all(c["passed"] for c in checks.values()), "checks": checks,
            "imports": import_log(soak), "gauges": gauge_series(soak)}


def import_log(soak):
    """Every import: when it was posted (s from the start), where, when it was complete, and
    for a slow one its progress on every instance (`trace`: [t, slot, matchesReady,
    matchesTotal, playersReady, playersTotal, failed])."""
    out = []
    for r in soak.imports:
        team = soak.manifest["teams"][r["team"]]
        entry = {"t": r["t"], "kind": r["kind"], "team": team["teamId"],
                 "matches": len(team["matches"]), "players": len(team["players"]),
                 "posts": r["posts"], "completeAt": r["completeAt"],
                 "tookS": None if r["completeAt"] is None else round(r["completeAt"] - r["t"], 1)}
        if "trace" in r:
            entry["trace"] = r["trace"]
        out.append(entry)
    return out


def gauge_series(soak):
    """The sampled GAUGES per incarnation: {name: [[t, {metric: value}], ...]}."""
    series = {}
    for t, slot, inc, gauges in soak.gauges:
        series.setdefault(f"i{slot}-{inc}", []).append([t, gauges])
    return series


def print_summary(r):
    c = r["checks"]
    ok = {True: "PASS", False: "FAIL"}
    im, fe, rss, lg, ch = c["imports"], c["fetches"], c["rss"], c["logs"], c["chaos"]
    print(f"== soak result (seed {r['seed']}, {r['minutes']} min, drained at {r['drainedAtS']} s,"
          f" wall {r.get('wallS')} s, load {r['loadAverage']})")
    kinds = ", ".join(f"{k} {v['completed']}/{v['imports']}" + (
        f" (median {v['completeS']['median']} s, p95 {v['completeS']['p95']} s)"
        if "completeS" in v else "") for k, v in im["byKind"].items())
    print(f"{ok[im['passed']]} imports: {im['teams']} teams complete on every instance: "
          f"{im['viewProblemCount']} problems; imports {kinds}; {im['bodies']['bodies']} bodies, "
          f"{im['bodies']['corruptCount']} corrupt; {im['postErrors']} POSTs retried; "
          f"{im.get('repairsSampled', 0)} stalled children queued again")
    print(f"{ok[fe['passed']]} fetches: {fe['fileAnswers']} file answers for at most "
          f"{fe['allowed']} allowed ({fe['forcedRefreshes']} forced refreshes); {fe['extra']} extra "
          f"= {fe['redeliveryPct']}% (max {fe['limitPct']:g}%); {fe['faultsServed']} faults "
          f"served of {fe['faultsScripted']} scripted; {len(fe['unexpectedPaths'])} unexpected, "
          f"{len(fe['missingPaths'])} missing paths")
    print(f"{ok[c['no429']['passed']]} 429s: fixture {c['no429']['fixture429']}, instances' "
          f"metrics {c['no429']['service429SeenInMetrics']}; budget grants sampled "
          f"{c['no429']['budgetGrantsSampled']}, on the fallback share "
          f"{c['no429']['fallbackGrantsSampled']}")
    for name, e in rss["incarnations"].items():
        judged = (f"{e['atMarkMB']} MB at {e['markS']} s -> {e['atEndMB']} MB: "
                  f"{e['growthPct']:+.1f}% (meanwhile hot cache {e['hotCacheMB'][0]} -> "
                  f"{e['hotCacheMB'][1]} MB, redb file {e['storeFileMB'][0]} -> "
                  f"{e['storeFileMB'][1]} MB)") if "growthPct" in e else e["judged"]
        print(f"{ok[e.get('passed', True)]} rss {name} ({e['fromS']}-{e['toS']} s, max "
              f"{e['maxMB']} MB): {judged}")
    print(f"{ok[lg['passed']]} logs: {lg['unexplainedCount']} unexplained errors; allowed "
          f"{lg['allowed']}; nats [ERR] lines {lg['natsErrLines']}")
    for line in lg["unexplained"][:10]:
        print(f"     {line}")
    slow = [i for i in r.get("imports", []) if i["tookS"] is None or i["tookS"] > 60]
    for i in slow[:20]:
        print(f"     slow import: {i['kind']} team {i['team']} at {i['t']} s took {i['tookS']} s")
    print(f"{ok[ch['passed']]} chaos: {ch['actions']} actions {ch['byKind']}, "
          f"{len(ch['failed'])} did not recover")
    print(f"== {'PASSED' if r['passed'] else 'FAILED'}")
