//! A fleet of service instances with `--store nats` on one real 3-node JetStream cluster
//! ([`NatsCluster`]), all fetching from one fixture upstream over HTTP: in-process instances
//! (`Application::build`, like every other test) and, for "the process dies" tests, instances
//! run as child processes of the real binary that a test can kill with SIGKILL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::clock::Clock;
use dota_orchestrator::config::{NatsAuth, NatsMode, Settings, StoreBackend};
use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureUpstream};
use serde_json::Value;

use super::cluster::NatsCluster;
use super::{Fixtures, init_tracing, start_upstream, test_settings};

/// Replicas of every stream and bucket: all three nodes hold a copy.
pub const REPLICAS: u8 = 3;
/// Claims of a dead instance are free again after this.
pub const LEASE_SECS: u64 = 3;
/// Jobs a dead instance held go to another after this (the first instance of a fleet creates
/// the consumers, so a child process started later keeps this too).
pub const ACK_WAIT: Duration = Duration::from_secs(10);

/// One in-process instance.
pub struct Member {
    pub app: Option<Application>,
    pub base: String,
    pub data_dir: tempfile::TempDir,
}

/// The cluster, the upstream and the instances.
pub struct Fleet {
    pub cluster: NatsCluster,
    pub upstream: FixtureUpstream,
    pub fixtures: Fixtures,
    pub clock: Clock,
    /// Given to every in-process instance: the shared clock and the short ack wait.
    pub hooks: Hooks,
    pub http: reqwest::Client,
    pub members: Vec<Member>,
}

impl Fleet {
    /// Starts the cluster, the upstream and `instances` in-process instances, each tweaked by
    /// `tweak` (applied to every instance, and again on restarts).
    pub async fn start(
        instances: usize,
        fixtures: Fixtures,
        upstream: FixtureConfig,
        tweak: fn(&mut Settings),
    ) -> Fleet {
        Self::start_with_hooks(instances, fixtures, upstream, tweak, |_| {}).await
    }

    /// [`Fleet::start`], with the hooks of every instance tweaked by `hooks`.
    pub async fn start_with_hooks(
        instances: usize,
        fixtures: Fixtures,
        upstream: FixtureConfig,
        tweak: fn(&mut Settings),
        hooks: fn(&mut Hooks),
    ) -> Fleet {
        init_tracing();
        let cluster = NatsCluster::start(3).await;
        let clock = upstream.clock.clone();
        let upstream = start_upstream(&fixtures, upstream).await;
        let mut fleet_hooks = Hooks {
            clock: clock.clone(),
            job_ack_wait: Some(ACK_WAIT),
            ..Hooks::default()
        };
        hooks(&mut fleet_hooks);
        let mut fleet = Fleet {
            cluster,
            upstream,
            fixtures,
            clock,
            hooks: fleet_hooks,
            http: reqwest::Client::new(),
            members: Vec::new(),
        };
        for _ in 0..instances {
            let data_dir = tempfile::tempdir().expect("temp data dir");
            let app = fleet.build(data_dir.path(), tweak).await;
            fleet.members.push(Member {
                base: format!("http://{}", app.http_addr()),
                app: Some(app),
                data_dir,
            });
        }
        fleet
    }

    /// Starts one more in-process instance, on an empty data dir; returns its index.
    pub async fn add(&mut self, tweak: fn(&mut Settings)) -> usize {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let app = self.build(data_dir.path(), tweak).await;
        self.members.push(Member {
            base: format!("http://{}", app.http_addr()),
            app: Some(app),
            data_dir,
        });
        self.members.len() - 1
    }

    /// Settings of an instance of this fleet on `data_dir`.
    pub fn settings(&self, data_dir: &Path) -> Settings {
        let mut s = test_settings(data_dir, &self.upstream);
        s.nats = NatsMode::External {
            url: self.cluster.url(),
            auth: NatsAuth::None,
            tls_ca: None,
        };
        s.store = StoreBackend::Nats;
        s.nats_replicas = REPLICAS;
        s.claim_lease_secs = LEASE_SECS;
        s
    }

    async fn build(&self, data_dir: &Path, tweak: fn(&mut Settings)) -> Application {
        let mut settings = self.settings(data_dir);
        tweak(&mut settings);
        Application::build(settings, self.hooks.clone())
            .await
            .expect("instance starts")
    }

    pub fn base(&self, i: usize) -> &str {
        &self.members[i].base
    }

    pub async fn post(&self, i: usize, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base(i)))
            .send()
            .await
            .expect("POST")
    }

    pub async fn get(&self, i: usize, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base(i)))
            .send()
            .await
            .expect("GET")
    }

    /// The fixture upstream's request log.
    pub async fn upstream_stats(&self) -> Value {
        super::upstream_stats(&self.upstream).await
    }

    /// Requests the upstream answered for `path` (e.g. `/opendota/matches/7`).
    pub async fn requests(&self, path: &str) -> u64 {
        self.upstream_stats().await["paths"][path]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Paths the upstream was asked for more than once, with their counts.
    pub async fn repeated_requests(&self) -> Vec<(String, u64)> {
        let stats = self.upstream_stats().await;
        stats["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .iter()
                    .filter_map(|(p, v)| {
                        let n = v["requests"].as_u64().unwrap_or(0);
                        (n > 1).then(|| (p.clone(), n))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stops instance `i` gracefully, keeping its data dir.
    pub async fn stop(&mut self, i: usize) {
        if let Some(app) = self.members[i].app.take() {
            app.stop().await;
        }
    }

    /// Starts instance `i` again, on its own data dir or, with `fresh_dir`, an empty one.
    pub async fn restart(&mut self, i: usize, fresh_dir: bool, tweak: fn(&mut Settings)) {
        self.stop(i).await;
        if fresh_dir {
            self.members[i].data_dir = tempfile::tempdir().expect("temp data dir");
        }
        let app = self.build(self.members[i].data_dir.path(), tweak).await;
        self.members[i].base = format!("http://{}", app.http_addr());
        self.members[i].app = Some(app);
    }

    /// Runs an instance as a child process of the real binary, with default claim lease and
    /// rate limits matching the in-process instances. Killed on drop.
    pub async fn spawn_process(&self) -> ProcessMember {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let mut member = self.spawn_process_in(data_dir.path()).await;
        member._data_dir = Some(data_dir);
        member
    }

    /// [`Fleet::spawn_process`] on `data_dir`, which the caller keeps (to start another
    /// process on it after this one stopped).
    pub async fn spawn_process_in(&self, data_dir: &Path) -> ProcessMember {
        self.spawn_process_with(data_dir, &[]).await
    }

    /// [`Fleet::spawn_process_in`] with `extra` flags after the fleet's own.
    pub async fn spawn_process_with(&self, data_dir: &Path, extra: &[&str]) -> ProcessMember {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let settings = self.settings(data_dir);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"));
        cmd.arg("serve")
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--nats-url")
            .arg(self.cluster.url())
            .arg("--store")
            .arg("nats")
            .arg("--nats-replicas")
            .arg(REPLICAS.to_string())
            .arg("--claim-lease-secs")
            .arg(LEASE_SECS.to_string())
            .arg("--opendota-url")
            .arg(&settings.opendota_url)
            .arg("--dotabuff-url")
            .arg(&settings.dotabuff_url)
            .arg("--opendota-rate-limit-per-min")
            .arg(settings.limits.opendota_per_minute.to_string())
            .arg("--dotabuff-rate-limit-per-min")
            .arg(settings.limits.dotabuff_per_minute.to_string())
            .arg("--retry-base-ms")
            .arg(settings.retry.base_delay.as_millis().to_string())
            .arg("--retry-max-ms")
            .arg(settings.retry.max_delay.as_millis().to_string())
            .args(extra)
            .env_remove("DOTA_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn the service binary");
        let base = format!("http://127.0.0.1:{port}");
        let up = super::wait_for(super::WAIT, || async {
            let r = reqwest::get(format!("{base}/readyz")).await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        assert!(up.is_some(), "the child instance became ready");
        ProcessMember {
            child,
            base,
            _data_dir: None,
        }
    }
}

/// An instance running as a child process.
pub struct ProcessMember {
    child: Child,
    pub base: String,
    _data_dir: Option<tempfile::TempDir>,
}

impl ProcessMember {
    /// SIGTERM, then waits for a clean exit (a graceful stop, as a deployment does).
    pub async fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = std::time::Instant::now() + super::WAIT;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("try_wait") {
                break exit;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the instance exits after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(exit.success(), "{exit:?}");
    }

    /// The instance's `/metrics` value of `series` (its name and labels as exported), 0 when
    /// absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// SIGSTOP (`stop: true`) or SIGCONT: a frozen process keeps its connections and its jobs
    /// but renews no lease, as bench/soak.sh's 20 s freezes do.
    pub fn freeze(&self, stop: bool) {
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill -STOP/-CONT");
        assert!(status.success());
    }

    /// SIGKILL: no shutdown, no nak, no release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessMember {
    fn drop(&mut self) {
        self.kill();
    }
}
