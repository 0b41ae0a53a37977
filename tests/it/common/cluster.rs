//! A real NATS JetStream cluster for tests: [`NatsCluster::start`] runs N nats-server
//! processes on loopback, each on free ports with its own store in one temp dir, all from the
//! repository's `scripts/cluster/node.conf` (as `scripts/cluster.sh` does), and returns once
//! JetStream has a meta leader. Tests kill and restart nodes to play "a node dies".
//!
//! The binary is [`server_bin::find`]'s pick of at least [`MIN_SHARED_STORE`] (the project
//! venv that `scripts/install-deps.sh` fills, or `PATH`): Debian's 2.9 loses compare-and-swap
//! updates in a cluster and has no counters, so a test on it would prove nothing. None found
//! fails the test with `find`'s message, which says how to install one.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dota_orchestrator::bus::server_bin;
use dota_orchestrator::bus::server_version::{MIN_SHARED_STORE, ServerVersion};
use serde_json::Value;

use super::{repo_path, wait_for};

/// How long a cluster (or a restarted node) gets to agree on a JetStream meta leader. Three
/// loopback nodes need about a second; a loaded 2-core CI machine, several.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// One node: its ports and store stay the same across [`NatsCluster::restart`].
struct Node {
    name: String,
    client_port: u16,
    route_port: u16,
    monitor_port: u16,
    store_dir: PathBuf,
    log_file: PathBuf,
    /// None while killed.
    child: Option<Child>,
}

/// N nats-server processes routed to each other; every one is killed and the temp dir
/// removed on drop.
pub struct NatsCluster {
    binary: PathBuf,
    version: ServerVersion,
    conf: PathBuf,
    nodes: Vec<Node>,
    http: reqwest::Client,
    // Last: removed after the processes are gone (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `nodes` nodes and waits until every one is healthy and reports the same
    /// JetStream meta leader.
    /// Panics (failing the test) when no nats-server >= 2.12 is installed or the cluster does
    /// not form within [`FORM_TIMEOUT`].
    pub async fn start(nodes: usize) -> NatsCluster {
        assert!(nodes >= 1, "a cluster has at least one node");
        // reqwest is built without a default crypto provider (see `init_tracing`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let found = server_bin::find(None, MIN_SHARED_STORE)
            .unwrap_or_else(|err| panic!("the cluster tests need nats-server >= 2.12: {err}"));
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(nodes * 3);
        let nodes = (0..nodes)
            .map(|i| Node {
                name: format!("n{i}"),
                client_port: ports[3 * i],
                route_port: ports[3 * i + 1],
                monitor_port: ports[3 * i + 2],
                store_dir: dir.path().join(format!("n{i}")),
                log_file: dir.path().join(format!("n{i}.log")),
                child: None,
            })
            .collect();
        let mut cluster = NatsCluster {
            binary: found.path,
            version: found.version,
            conf: repo_path("scripts/cluster/node.conf"),
            nodes,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        let leader = wait_for(FORM_TIMEOUT, || async {
            let mut leaders = Vec::new();
            for i in 0..cluster.nodes.len() {
                cluster.healthy(i).await?;
                leaders.push(cluster.meta_leader(i).await?);
            }
            leaders.dedup();
            (leaders.len() == 1).then(|| leaders.remove(0))
        })
        .await;
        if leader.is_none() {
            panic!(
                "the {}-node cluster elected no JetStream meta leader within {}s; logs:\n{}",
                cluster.nodes.len(),
                FORM_TIMEOUT.as_secs(),
                cluster.log_tails()
            );
        }
        cluster
    }

    /// Every node's client URL, comma-separated: what `--nats-url` takes.
    pub fn url(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.node_url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client URL of node `i` alone.
    pub fn node_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// The nats-server version the cluster runs.
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// Number of nodes, running or killed.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// SIGKILLs node `i` (no flush, no goodbye to its peers: a crash) and reaps it. A killed
    /// node stays down until [`Self::restart`].
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            // `Child::kill` is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its ports and store (killing it first if it still runs), and
    /// waits until it is healthy: JetStream current with the meta leader.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        let healthy = wait_for(FORM_TIMEOUT, || async {
            self.healthy(i).await?;
            self.meta_leader(i).await
        })
        .await;
        if healthy.is_none() {
            panic!(
                "node {i} was not healthy within {}s of its restart; logs:\n{}",
                FORM_TIMEOUT.as_secs(),
                self.log_tails()
            );
        }
    }

    /// `Some` when node `i` answers `/healthz` with 200: running, and in a cluster its
    /// JetStream is current with the meta leader and its streams.
    pub async fn healthy(&self, i: usize) -> Option<()> {
        let url = format!("http://127.0.0.1:{}/healthz", self.nodes[i].monitor_port);
        let resp = self.http.get(url).send().await.ok()?;
        resp.status().is_success().then_some(())
    }

    /// The JetStream meta leader as node `i` sees it (`/jsz` → `meta_cluster.leader`), if any.
    pub async fn meta_leader(&self, i: usize) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/jsz", self.nodes[i].monitor_port);
        let jsz: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        let leader = jsz["meta_cluster"]["leader"].as_str()?;
        (!leader.is_empty()).then(|| leader.to_string())
    }

    /// Runs node `i`: the shared policy file, its own name, ports and store as flags.
    fn spawn(&mut self, i: usize) {
        let routes = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.route_port))
            .collect::<Vec<_>>()
            .join(",");
        let node = &mut self.nodes[i];
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.conf)
            .args(["-n", &node.name, "-p", &node.client_port.to_string()])
            .args(["-m", &node.monitor_port.to_string()])
            .arg("-sd")
            .arg(&node.store_dir)
            .arg("--cluster")
            .arg(format!("nats://127.0.0.1:{}", node.route_port))
            .args(["--routes", &routes])
            .arg("-l")
            .arg(&node.log_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{} does not start: {err}", self.binary.display()));
        node.child = Some(child);
    }

    /// The last lines of every node's log, for failure messages.
    fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {}\n{}", n.name, tail(&n.log_file, 15)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Waits until `stream` has a leader and returns its name. Creating an R3 stream (or KV
/// bucket) returns once the meta leader has placed it, before its own replicas have elected a
/// leader: a write in that gap fails with "stream not found". Writes right after a create must
/// wait for this (or retry), in tests and in the service alike.
pub async fn wait_stream_leader(js: &async_nats::jetstream::Context, stream: &str) -> String {
    let leader = wait_for(FORM_TIMEOUT, || async {
        let info = js.get_stream(stream).await.ok()?.info().await.ok()?.clone();
        info.cluster?.leader.filter(|l| !l.is_empty())
    })
    .await;
    leader.unwrap_or_else(|| {
        panic!(
            "stream {stream} had no leader within {}s",
            FORM_TIMEOUT.as_secs()
        )
    })
}

/// `count` distinct free loopback ports. All are held until all are chosen, so none repeats;
/// another process may still take one before nats-server binds it (rare; the test then fails
/// with the node's log).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| {
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("a free port")
        })
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
