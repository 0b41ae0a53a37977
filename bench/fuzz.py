"""Fuzzes the HTTP API with schemathesis against the live service's own `/api/openapi.json`
(release binary, `--demo`, temp data dir, `--nats-port 0`), then counts the requests it sent and
the 5xx answers from its HAR report. `GET /api/events` is excluded: it is an SSE stream that never
ends, so every generated request would run into the request timeout.

    python3 bench/fuzz.py OUT.json [--schemathesis PATH] [--max-examples N] [--seed N]

Exit status 1 if any answer was a 5xx. Run by `bench/fuzz.sh`, which installs schemathesis.
"""

import argparse
import json
import os
import subprocess
import sys

import common
import demo


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--schemathesis", default="schemathesis")
    ap.add_argument("--max-examples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-time", type=int, default=180)
    args = ap.parse_args()

    work = common.tempdir("fuzz")
    svc = demo.start_demo(work)
    har = os.path.join(work, "fuzz.har")
    opts = ["--exclude-path", "/api/events",
           "--checks", "not_a_server_error",
           "--max-examples", str(args.max_examples), "--seed", str(args.seed),
           "--max-time", str(args.max_time),
           "--request-timeout", "10", "--workers", "2"]
    cmd = [args.schemathesis, "run", f"http://{svc.addr}/api/openapi.json", *opts,
           "--report", "har", "--report-har-path", har, "--no-color"]
    print("$", " ".join(cmd), flush=True)
    load_before = common.load_average()
    st = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL)
    with open(har) as f:
        entries = json.load(f)["log"]["entries"]
    by_status = {}
    server_errors = []
    for e in entries:
        code = e["response"]["status"]
        by_status[code] = by_status.get(code, 0) + 1
        if code >= 500 or code == 0:
            server_errors.append(f'{e["request"]["method"]} {e["request"]["url"]} -> {code}')
    result = {
        "command": " ".join(["schemathesis run http://ADDR/api/openapi.json", *opts]),
        "schemathesis_exit": st.returncode,
        "requests": len(entries),
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "server_errors": len(server_errors),
        "server_error_requests": server_errors[:20],
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    common.write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
