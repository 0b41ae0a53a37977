#!/usr/bin/env python3
"""Renders bench/scale.py results as a Markdown table for BENCHMARKS.md ("Scale and cost"):
one column per run (e.g. the baseline and a new build), printed on stdout.

Usage: scale_report.py RUN.json [RUN.json ...] [--names before,after]
"""

import argparse
import json
import os

MiB = 2 ** 20


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def mb(v):
    return "–" if v is None else f"{v / MiB:.1f} MiB"


def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}x"


def ms(v):
    return "–" if v is None else f"{v:.3f} ms"


def s(v):
    return "–" if v is None else f"{v:.2f} s"


def plain(v, unit=""):
    return "–" if v is None else f"{v}{unit}"


def most(league, key):
    """The largest value of `key` among the import's samples (None when none has it)."""
    values = [x[key] for x in get(league, "import", "samples") or [] if x.get(key)]
    return max(values) if values else None


def rows_for(run):
    lg, nt = run.get("league") or {}, run.get("nats") or {}
    b, nb = lg.get("bodies") or {}, nt.get("bodies") or {}
    redb = lg.get("redbBytes")
    out = [
        ("**1,000-match league, `--store redb`**", ""),
        ("bodies: plain / gzip-6", f"{mb(b.get('plain'))} / {mb(b.get('gzip6'))}" if b else "–"),
        ("`dota.redb` after the import", mb(redb)),
        ("  × plain bytes / × gzip-6 bytes",
         f"{ratio(redb, b.get('plain'))} / {ratio(redb, b.get('gzip6'))}"),
        ("`dota.redb` on disk (allocated blocks) after the import", mb(lg.get("redbDiskBytes"))),
        ("  × gzip-6 bytes: on disk / most on disk during the import",
         f"{ratio(lg.get('redbDiskBytes'), b.get('gzip6'))} / "
         f"{ratio(most(lg, 'redbDiskBytes'), b.get('gzip6'))}"),
        ("  × gzip-6 bytes after a clean stop: length / on disk",
         f"{ratio(lg.get('redbAfterRestartsBytes'), b.get('gzip6'))} / "
         f"{ratio(lg.get('redbAfterRestartsDiskBytes'), b.get('gzip6'))}"),
        ("RSS after the import (peak)", f"{plain(get(lg, 'memory', 'rssMiB'), ' MiB')} "
         f"({plain(get(lg, 'memory', 'peakRssMiB'), ' MiB')})"),
        ("RSS 12 s after the import", plain(get(lg, "memory", "settledRssMiB"), " MiB")),
        ("RSS at 1k / 10k resources stored", f"{plain(get(lg, 'import', 'rssAt', '1000'), ' MiB')} / "
         f"{plain(get(lg, 'import', 'rssAt', '10000'), ' MiB')}"),
        ("hot cache bytes / capacity", f"{plain(get(lg, 'memory', 'hotCacheBytes'))} / "
         f"{plain(get(lg, 'memory', 'hotCacheCapacityBytes'))}"),
        ("store cache capacity", plain(get(lg, "memory", "storeCacheCapacityBytes"))),
        ("service CPU per stored resource",
         plain(get(lg, "import", "cpuMsPerResource"), " ms")),
        ("import: matches/s (all matches ready) / wall",
         f"{plain(get(lg, 'import', 'matchesPerS'))} / {s(get(lg, 'import', 'wallS'))}"),
        ("team view median (cached rendering, identity)",
         ms(get(lg, "latency", "teamView", "medianMs"))),
        ("team view median (cached, gzip)", ms(get(lg, "latency", "teamViewGzip", "medianMs"))),
        ("team view median (rendered from summaries every GET)",
         ms(get(lg, "renderedEveryGet", "teamView", "medianMs"))),
        ("team view body (identity)", plain(get(lg, "latency", "teamView", "bodyBytes"), " B")),
        ("`?include=progress` median", ms(get(lg, "latency", "teamProgress", "medianMs"))),
        ("`/api/queue/status` median", ms(get(lg, "latency", "queueStatus", "medianMs"))),
        ("restart: ready / serving the view (median of 3)",
         f"{s(get(lg, 'restart', 'medianReadyS'))} / "
         f"{s(get(lg, 'restart', 'medianServingViewS'))}"),
    ]
    nodes = nt.get("nodes") or []
    js = [n.get("jszStorageBytes") for n in nodes]
    rep = nt.get("replicaRedbBytes")
    out += [
        ("**300 matches, `--store nats`, 3-node R3**", ""),
        ("bodies: plain / gzip-6", f"{mb(nb.get('plain'))} / {mb(nb.get('gzip6'))}" if nb else "–"),
        ("JetStream per node (/jsz storage)", " / ".join(mb(v) for v in js) if js else "–"),
        ("  × gzip-6 bytes (node 1)", ratio(js[0] if js else None, nb.get("gzip6"))),
        ("instance's redb replica", mb(rep)),
        ("  × gzip-6 bytes", ratio(rep, nb.get("gzip6"))),
        ("instance RSS after the import", plain(get(nt, "memory", "rssMiB"), " MiB")),
        ("service CPU per stored resource", plain(get(nt, "import", "cpuMsPerResource"), " ms")),
        ("restart: ready / serving the view (median of 3)",
         f"{s(get(nt, 'restart', 'medianReadyS'))} / "
         f"{s(get(nt, 'restart', 'medianServingViewS'))}"),
        ("**start-up, `--store redb`, small synthetic bodies**", ""),
    ]
    for row in run.get("startup") or []:
        out.append((f"{row['resources']:,} resources: ready (median of 3); redb; RSS",
                    f"{s(row['medianReadyS'])}; {mb(row['redbBytes'])}; "
                    f"{plain(row['rssWhenReadyMiB'], ' MiB')}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--names", default=None)
    args = ap.parse_args()
    runs = []
    for path in args.runs:
        with open(path) as f:
            runs.append(json.load(f))
    names = args.names.split(",") if args.names else [os.path.basename(p) for p in args.runs]
    tables = [rows_for(r) for r in runs]
    print("| measure | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(runs))
    for i, (label, _) in enumerate(tables[0]):
        print(f"| {label} | " + " | ".join(t[i][1] for t in tables) + " |")
    loads = ", ".join(f"{n}: load {get(r, 'load', 'start')} → {get(r, 'load', 'end')}"
                      for n, r in zip(names, runs))
    print(f"\n1-minute load averages around the runs (2 cores, shared): {loads}.")


if __name__ == "__main__":
    main()
