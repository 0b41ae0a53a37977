"""Shared helpers for the benchmark drivers in bench/: start and stop the release binary's
fixture upstream and service, small HTTP helpers, percentiles.

Every process started here is recorded and stopped on exit (normal return, exception, SIGTERM
or SIGINT): SIGTERM first, SIGKILL after a grace period. If the service had to be killed, the
nats-server it started is found by its store path under our temp data dir and stopped by pid.
Only loopback addresses are used; every wait is bounded by a deadline.
"""

import atexit
import datetime
import http.client
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BINARY = os.environ.get("BENCH_BINARY", os.path.join(TARGET, "release", "dota-orchestrator"))
FIXTURES = os.path.join(ROOT, "fixtures", "demo")

TEAM_ID = "9517508"
LEAGUE_ID = "16435"

# How long a child gets after SIGTERM before SIGKILL; the service drains its workers and stops
# nats-server within a few seconds.
STOP_GRACE_S = 15.0
# How long start-up may take until the child prints its address line on stdout.
START_TIMEOUT_S = 30.0

_children = []  # [Child], stopped in reverse order
_tempdirs = []


class Child:
    """A started process whose first stdout line announced `http://ADDR`."""

    def __init__(self, name, argv, log_path, data_dir=None):
        self.name = name
        self.data_dir = data_dir
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL
        )
        _children.append(self)
        self.addr = self._read_addr()
        # Drain anything else on stdout so the child can never block on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_addr(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        buf = b""
        fd = self.proc.stdout.fileno()
        # The first line with the address: a wrapper (heaptrack) may print lines before it.
        while not re.search(rb"http://[^\n]*\n", buf):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} did not announce its address (see {self.log.name})")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                buf += chunk
        line = re.search(rb"http://([^\n]*)\n", buf).group(1).decode()
        return line.strip()

    def _drain(self):
        try:
            while self.proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def stop(self):
        _terminate(self, lambda: _kill_orphan_nats(self.data_dir))


class Daemon:
    """A started process that announces nothing (e.g. nginx in the foreground); the caller
    waits for it to answer. Stopped like a `Child`: SIGTERM, SIGKILL after the grace period."""

    def __init__(self, name, argv, log_path):
        self.name = name
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        _children.append(self)

    def stop(self):
        _terminate(self, lambda: None)


def _terminate(child, after_kill):
    """SIGTERM, then SIGKILL (and `after_kill`) once the grace period has passed."""
    if child.proc.poll() is None:
        child.proc.send_signal(signal.SIGTERM)
        try:
            child.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait(timeout=5)
            after_kill()
    if child in _children:
        _children.remove(child)
    child.log.close()


def _kill_orphan_nats(data_dir):
    """Stops a nats-server left behind by a killed service: the one whose command line names our
    own temp data dir (never any other nats-server)."""
    if not data_dir:
        return
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"nats-server") and any(data_dir.encode() in a for a in argv):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def cleanup():
    while _children:
        _children[-1].stop()
    while _tempdirs:
        shutil.rmtree(_tempdirs.pop(), ignore_errors=True)


def _on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=f"dota-bench-{prefix}-")
    _tempdirs.append(d)
    return d


def remove_tempdir(d):
    shutil.rmtree(d, ignore_errors=True)
    if d in _tempdirs:
        _tempdirs.remove(d)


def start_fixture(work_dir, latency_ms=50, rate_limit_per_min=None, data_dir=FIXTURES):
    argv = [BINARY, "fixture-upstream", "--dir", data_dir, "--addr", "127.0.0.1:0",
            "--latency-ms", str(latency_ms)]
    if rate_limit_per_min is not None:
        argv += ["--rate-limit-per-min", str(rate_limit_per_min)]
    return Child("fixture-upstream", argv, os.path.join(work_dir, "fixture.log"))


def start_service(work_dir, fixture, opendota_per_min=60, dotabuff_per_min=30, extra=()):
    data_dir = os.path.join(work_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    argv = [BINARY, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
            "--nats-port", "0",
            "--opendota-url", f"http://{fixture.addr}/opendota",
            "--dotabuff-url", f"http://{fixture.addr}/dotabuff",
            "--opendota-rate-limit-per-min", str(opendota_per_min),
            "--dotabuff-rate-limit-per-min", str(dotabuff_per_min), *extra]
    svc = Child("service", argv, os.path.join(work_dir, "service.log"), data_dir=data_dir)
    wait_until(lambda: request("GET", svc.addr, "/readyz")[0] == 200, 30, "service /readyz")
    return svc


def request(method, addr, path, timeout=10.0):
    """One request on a new connection (urllib). Returns (status, parsed JSON or None)."""
    req = urllib.request.Request(f"http://{addr}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def queue_status_now(addr, timeout_s=10.0):
    """`/api/queue/status` from a snapshot taken after this call. The service refreshes the
    snapshot in the background (every 0.5 s); `asOf` says when it was taken, so an answer is
    accepted only once its `asOf` is later than the call. None if none comes in `timeout_s`."""
    since = datetime.datetime.now(datetime.timezone.utc)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = request("GET", addr, "/api/queue/status")
        as_of = body.get("asOf") if status == 200 and isinstance(body, dict) else None
        # fromisoformat takes a trailing "Z" from Python 3.11 on; replacing it works before too.
        if as_of and datetime.datetime.fromisoformat(as_of.replace("Z", "+00:00")) > since:
            return body
        time.sleep(0.05)
    return None


def keepalive(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=10)


def wait_until(cond, timeout_s, what, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def fixture_stats(fixture):
    status, stats = request("GET", fixture.addr, "/_stats")
    if status != 200:
        raise RuntimeError(f"fixture /_stats answered {status}")
    return stats


def opendota_calls(stats):
    return sum(p["requests"] for k, p in stats["paths"].items() if k.startswith("/opendota/"))


def dotabuff_calls(stats):
    return sum(p["requests"] for k, p in stats["paths"].items() if k.startswith("/dotabuff/"))


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = math.ceil(p / 100 * len(s))
    return s[max(0, min(len(s), rank) - 1)]


def load_average():
    """The 1-minute load average, to show how busy the (shared) machine was around a benchmark."""
    return round(os.getloadavg()[0], 2)


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
