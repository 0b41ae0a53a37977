#!/usr/bin/env python3
"""Measures the candidate stored forms of a body (issue 19, "pay for a body once"): bytes and
CPU of gzip at levels 1, 6 and 9 and of brotli at qualities 5, 9 and 11, and the time to
decompress each (what serving the plain bytes, or a gzip-only client from a brotli truth,
would cost). Bodies: the given JSON files (compact, as OpenDota sends them), else one
synthetic parsed match and one player written by bench/gen_league.py.

Usage: bench/compression.py [FILE.json ...]   (adds the brotli wheel to bench/.venv)
Prints a Markdown table.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")


def ensure_brotli():
    try:
        import brotli  # noqa: F401
        return
    except ImportError:
        pass
    py = os.path.join(VENV, "bin", "python3")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "brotli"], check=True)
    os.execv(py, [py] + sys.argv)


def bodies(paths):
    if paths:
        for p in paths:
            with open(p, "rb") as f:
                yield os.path.basename(p), json.dumps(json.load(f), separators=(",", ":")).encode()
        return
    out = tempfile.mkdtemp()
    subprocess.run([sys.executable, os.path.join(HERE, "gen_league.py"), out, "--matches", "1",
                    "--players", "10"], check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    first_league_match = min(
        int(f[:-5]) for f in os.listdir(os.path.join(out, "opendota", "matches"))
        if f != f"{manifest['largeMatchId']}.json")
    for name, rel in [("parsed match", f"opendota/matches/{manifest['largeMatchId']}.json"),
                      ("league match", f"opendota/matches/{first_league_match}.json"),
                      ("player", f"opendota/players/{manifest['playerId']}.json")]:
        path = os.path.join(out, rel)
        if os.path.exists(path):
            yield name, open(path, "rb").read()


def timed(fn, n):
    start = time.perf_counter()
    for _ in range(n):
        out = fn()
    return out, (time.perf_counter() - start) / n * 1000


def gzip_bytes(body, level):
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(body) + c.flush()


def main():
    ensure_brotli()
    import brotli
    print("| body | plain | form | bytes | x gzip-6 | compress ms | decompress ms |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name, body in bodies(sys.argv[1:]):
        n = 20 if len(body) > 100_000 else 500
        g6 = len(gzip_bytes(body, 6))
        forms = [(f"gzip-{lvl}", (lambda b, l=lvl: gzip_bytes(b, l)), lambda z: zlib.decompress(z, 31))
                 for lvl in (1, 6, 9)]
        forms += [(f"brotli-{q}", (lambda b, q=q: brotli.compress(b, quality=q)), brotli.decompress)
                  for q in (5, 9, 11)]
        for form, comp, decomp in forms:
            packed, c_ms = timed(lambda: comp(body), 3 if form == "brotli-11" else n)
            _, d_ms = timed(lambda: decomp(packed), n)
            print(f"| {name} | {len(body)} | {form} | {len(packed)} | {len(packed)/g6:.2f} | "
                  f"{c_ms:.3f} | {d_ms:.3f} |")


if __name__ == "__main__":
    main()
