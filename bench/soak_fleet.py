"""The processes of the chaos soak (bench/soak.py): a 3-node NATS JetStream cluster whose nodes
can be killed and restarted on their ports and stores, and service instances (`serve --store
nats`) that can be killed, restarted on their data dirs, frozen and measured.

Every process is started through bench/common.py, which stops whatever is still running on exit
(also on SIGTERM or an exception). A kill here is SIGKILL (`kill -9`: no flush, no goodbye);
each start of an instance writes its own log (`i<slot>-<n>.log`), so the log check can tell
which incarnation wrote what.
"""

import os
import re
import signal
import time

import common
import scaleout

NODES = 3
REPLICAS = 3
# A restarted node rejoins and catches up within seconds; a loaded 2-core machine, more.
NODE_HEALTHY_TIMEOUT_S = 60
# An instance is ready within seconds of the cluster (debug build, loaded machine: more).
READY_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 2
# Both caches small (MiB), so that they are full within the first minutes and the RSS check
# after minute 10 sees what else grows: 64 MiB each (the defaults) would keep filling for the
# whole run, since the replica holds only ~25 MB of data at the end of 30 minutes.
HOT_CACHE_MB = 4
STORE_CACHE_MB = 4


class Cluster:
    """NODES nats-server processes routed to each other, from scripts/cluster/node.conf."""

    def __init__(self, work, server):
        self.work = work
        ports = scaleout.free_ports(3 * NODES)
        client, route, self.monitor = ports[:NODES], ports[NODES:2 * NODES], ports[2 * NODES:]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in route)
        self.url = ",".join(f"nats://127.0.0.1:{p}" for p in client)
        self.argv = [
            [server, "-c", scaleout.NODE_CONF, "-n", f"soak-n{i}", "-p", str(client[i]),
             "-m", str(self.monitor[i]), "-sd", os.path.join(work, f"n{i}"),
             "--cluster", f"nats://127.0.0.1:{route[i]}", "--routes", routes]
            for i in range(NODES)]
        self.nodes = [self._spawn(i) for i in range(NODES)]
        common.wait_until(self._formed, scaleout.FORM_TIMEOUT_S,
                          "the cluster to agree on a JetStream leader")

    def _spawn(self, i):
        return common.Daemon(f"nats-n{i}", self.argv[i], os.path.join(self.work, f"n{i}.log"))

    def _leader(self, i):
        if common.request("GET", f"127.0.0.1:{self.monitor[i]}", "/healthz",
                          timeout=PROBE_TIMEOUT_S)[0] != 200:
            return ""
        status, jsz = common.request("GET", f"127.0.0.1:{self.monitor[i]}", "/jsz",
                                     timeout=PROBE_TIMEOUT_S)
        return ((jsz or {}).get("meta_cluster") or {}).get("leader") or "" if status == 200 else ""

    def _formed(self):
        leaders = {self._leader(i) for i in range(NODES)}
        return len(leaders) == 1 and "" not in leaders

    def kill(self, i):
        """SIGKILL node i and reap it; it stays down until `restart`."""
        _sigkill(self.nodes[i])

    def restart(self, i):
        """Starts node i on its ports and store; returns seconds until it is healthy (JetStream
        current, with a meta leader)."""
        started = time.monotonic()
        self.nodes[i] = self._spawn(i)
        common.wait_until(lambda: self._leader(i) != "", NODE_HEALTHY_TIMEOUT_S,
                          f"node {i} healthy after its restart", interval_s=0.2)
        return time.monotonic() - started

    def err_lines(self):
        """`[ERR]` lines per node log (informational: a killed peer makes its peers log some)."""
        out = {}
        for i in range(NODES):
            try:
                with open(os.path.join(self.work, f"n{i}.log"), errors="replace") as f:
                    out[f"n{i}"] = sum(1 for line in f if "[ERR]" in line)
            except OSError:
                out[f"n{i}"] = None
        return out


class Instance:
    """One service slot: its data dir and flags stay the same across restarts."""

    def __init__(self, work, slot, argv):
        self.work = work
        self.slot = slot
        self.argv = argv
        self.incarnation = 0
        self.child = None
        self.frozen = False
        # Run under a wrapper such as heaptrack (SOAK_HEAPTRACK): its pid is not the service's.
        self.wrapped = argv[0] != argv[argv.index("serve") - 1]
        self.logs = []  # (incarnation, path, started monotonic)

    def start(self):
        """Starts a new incarnation; returns seconds until `/readyz` answers 200."""
        started = time.monotonic()
        self.incarnation += 1
        log = os.path.join(self.work, f"i{self.slot}-{self.incarnation}.log")
        self.logs.append((self.incarnation, log, started))
        self.child = common.Child(f"i{self.slot}", self.argv, log)
        common.wait_until(lambda: common.request("GET", self.child.addr, "/readyz",
                                                 timeout=PROBE_TIMEOUT_S)[0] == 200,
                          READY_TIMEOUT_S, f"instance {self.slot} /readyz", interval_s=0.2)
        return time.monotonic() - started

    @property
    def addr(self):
        child = self.child  # read once: the chaos thread may replace it meanwhile
        return child.addr if child is not None and child.proc.poll() is None else None

    def up(self):
        child = self.child
        return child is not None and child.proc.poll() is None

    def stop_wrapped(self):
        """SIGTERM to the service under a wrapper (the wrapper does not pass it on), then wait
        for the wrapper to finish (heaptrack writes its file)."""
        pid = self.pid() if self.wrapped else None
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        try:
            self.child.proc.wait(timeout=120)
        except Exception:  # left to common's stop on exit
            pass

    def kill(self):
        _sigkill(self.child)
        self.child = None

    def freeze(self, seconds):
        """SIGSTOP for `seconds`, then SIGCONT (also when interrupted)."""
        pid = self.pid()
        os.kill(pid, signal.SIGSTOP)
        self.frozen = True
        try:
            time.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
            self.frozen = False

    def pid(self):
        """The service's pid: the child's, or under a wrapper (heaptrack runs the program as
        its own child) the descendant running the binary; None when down."""
        child = self.child
        if child is None or child.proc.poll() is not None:
            return None
        if not self.wrapped:
            return child.proc.pid
        name = os.path.basename(self.argv[-1 - self.argv[::-1].index("serve") - 1])[:15]
        todo = [child.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == name:
                        return pid
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                continue
        return None

    def rss_kb(self):
        """Resident set size of the running incarnation, from /proc (None when down)."""
        pid = self.pid()
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
        except OSError:
            return None
        return int(m.group(1)) if m else None


def _sigkill(process):
    """kill -9 a common.Child/Daemon, reap it, and forget it (nothing left to stop on exit)."""
    if process is None:
        return
    if process.proc.poll() is None:
        process.proc.send_signal(signal.SIGKILL)
    process.proc.wait(timeout=30)
    if process in common._children:
        common._children.remove(process)
    process.log.close()


def instance_argv(binary, work, slot, cluster_url, fixture_addr, per_min):
    data_dir = os.path.join(work, f"i{slot}")
    os.makedirs(data_dir, exist_ok=True)
    return [
        binary, "serve", "--http-addr", "127.0.0.1:0", "--data-dir", data_dir,
        "--store", "nats", "--nats-url", cluster_url, "--nats-replicas", str(REPLICAS),
        "--opendota-url", f"http://{fixture_addr}/opendota",
        "--dotabuff-url", f"http://{fixture_addr}/dotabuff",
        "--opendota-rate-limit-per-min", str(per_min),
        "--opendota-daily-limit", "1000000",
        "--dotabuff-rate-limit-per-min", "600",
        # Patient retries, as tests/it/scale_out.rs: a leader election after a node dies fails
        # writes for several seconds, and a fault mix spends up to 3 attempts on its own.
        "--max-attempts", "12", "--retry-base-ms", "500", "--retry-max-ms", "4000",
        "--hot-cache-mb", str(HOT_CACHE_MB), "--store-cache-mb", str(STORE_CACHE_MB),
    ]
