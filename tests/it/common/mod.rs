//! Test harness: `spawn_app` starts the real application (embedded nats-server on a free port
//! with a temp store, redb in a temp dir, warp on port 0) against a real fixture upstream over
//! HTTP, whose files each test writes with [`Fixtures`]. Waiting is done by polling a
//! condition with a deadline, never by fixed sleeps.
#![allow(dead_code)]

pub mod cluster;
pub mod fixtures;
pub mod fleet;
pub mod queue;
pub mod receiver;
pub mod sources;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::clock::Clock;
use dota_orchestrator::config::{NatsMode, Settings};
use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureUpstream};
use serde_json::Value;

pub use fixtures::Fixtures;

/// Upper bound for any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Adds what every run of the binary in demo mode needs to `cmd`: its data dir, the repo's
/// `nats.conf` and the bundled demo data set.
pub fn demo_binary_paths(cmd: &mut std::process::Command, data_dir: &Path) {
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--nats-conf")
        .arg(repo_path("nats.conf"))
        .arg("--demo-dir")
        .arg(repo_path("fixtures/demo"));
}

/// Settings for a test instance: everything local, fast retries, generous rate limits.
pub fn test_settings(data_dir: &Path, upstream: &FixtureUpstream) -> Settings {
    let mut s = local_settings(data_dir);
    s.opendota_url = upstream.opendota_url();
    s.dotabuff_url = upstream.dotabuff_url();
    s.sources.steam_url = upstream.steam_url();
    s.sources.stratz_url = upstream.stratz_url();
    s
}

/// What every test instance shares: port 0, a temp data dir, an embedded nats-server on a free
/// port, fast retries and rate limits no test hits by accident.
fn local_settings(data_dir: &Path) -> Settings {
    let mut s = Settings::defaults();
    s.http_addr = "127.0.0.1:0".parse().expect("valid addr");
    s.data_dir = data_dir.to_path_buf();
    s.nats = NatsMode::Embedded {
        conf: repo_path("nats.conf"),
        port: 0,
    };
    s.limits.opendota_per_minute = 6000;
    s.limits.opendota_per_day = 100_000;
    s.limits.dotabuff_per_minute = 6000;
    s.retry.base_delay = Duration::from_millis(50);
    s.retry.max_delay = Duration::from_millis(500);
    s
}

pub async fn start_upstream(fixtures: &Fixtures, config: FixtureConfig) -> FixtureUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    FixtureUpstream::start(
        FixtureConfig {
            dir: fixtures.dir().to_path_buf(),
            ..config
        },
        listener,
    )
    .await
    .expect("start fixture upstream")
}

/// A running app with its upstream and temp dirs.
pub struct TestApp {
    pub app: Option<Application>,
    pub base: String,
    pub http: reqwest::Client,
    pub upstream: FixtureUpstream,
    pub data_dir: tempfile::TempDir,
    pub fixtures: Fixtures,
    /// The wall clock the service's rate limiter and the fixture's rate windows share.
    pub clock: Clock,
}

pub async fn spawn_app(fixtures: Fixtures) -> TestApp {
    spawn_app_with(fixtures, FixtureConfig::default(), |_| {}).await
}

/// The hooks of a test app: the wall clock it shares with its fixture upstream.
pub fn hooks(clock: &Clock) -> Hooks {
    Hooks {
        clock: clock.clone(),
        ..Hooks::default()
    }
}

/// Logs go to the test's captured output; `RUST_LOG=debug cargo test` shows more.
pub fn init_tracing() {
    // reqwest is built without a default crypto provider; the app installs ring, and test
    // clients may be built before the app.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub async fn spawn_app_with(
    fixtures: Fixtures,
    upstream_config: FixtureConfig,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_hooked(fixtures, upstream_config, tweak, |_| {}).await
}

/// [`spawn_app_with`], with hooks besides the shared clock.
pub async fn spawn_app_hooked(
    fixtures: Fixtures,
    upstream_config: FixtureConfig,
    tweak: impl FnOnce(&mut Settings),
    hook: impl FnOnce(&mut Hooks),
) -> TestApp {
    init_tracing();
    let clock = upstream_config.clock.clone();
    let upstream = start_upstream(&fixtures, upstream_config).await;
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut settings = test_settings(data_dir.path(), &upstream);
    tweak(&mut settings);
    let mut hooks = hooks(&clock);
    hook(&mut hooks);
    let app = Application::build(settings, hooks)
        .await
        .expect("app starts");
    TestApp {
        base: format!("http://{}", app.http_addr()),
        app: Some(app),
        http: reqwest::Client::new(),
        upstream,
        data_dir,
        fixtures,
        clock,
    }
}

impl TestApp {
    pub fn app(&self) -> &Application {
        self.app.as_ref().expect("app running")
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, path).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path).await
    }

    async fn send(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method.clone(), format!("{}{}", self.base, path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Polls GET `path` until it answers 200 and returns the JSON body.
    pub async fn get_when_ready(&self, path: &str) -> Value {
        self.get_when_ready_within(path, WAIT).await
    }

    /// [`Self::get_when_ready`] with a longer limit (tests that cross rate windows).
    pub async fn get_when_ready_within(&self, path: &str, limit: Duration) -> Value {
        let last = std::sync::Mutex::new(String::new());
        let found = wait_for(limit, || async {
            let resp = self.get(path).await;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status == 200 {
                return Some(serde_json::from_str::<Value>(&body).expect("JSON body"));
            }
            *last.lock().unwrap() = format!("{status} {body}");
            None
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "{path} never became ready; last answer: {}",
                last.lock().unwrap()
            )
        })
    }

    /// Polls the team import at `path` until every match and every player of them is ready,
    /// and returns that view.
    pub async fn wait_import_complete(&self, path: &str) -> Value {
        wait_for(Duration::from_secs(60), || async {
            import_complete(self.get(path).await).await
        })
        .await
        .expect("import completes")
    }

    /// Polls GET `path` until its status is `want`, returning the final JSON body.
    pub async fn wait_status(&self, path: &str, want: u16) -> Value {
        wait_for(WAIT, || async {
            let resp = self.get(path).await;
            if resp.status().as_u16() == want {
                Some(resp.json::<Value>().await.expect("JSON"))
            } else {
                None
            }
        })
        .await
        .unwrap_or_else(|| panic!("{path} never answered {want}"))
    }

    /// The fixture upstream's request counters.
    pub async fn upstream_stats(&self) -> Value {
        upstream_stats(&self.upstream).await
    }

    /// How many times the upstream was asked for `path` (e.g. `/opendota/matches/1`).
    pub async fn upstream_requests(&self, path: &str) -> u64 {
        self.upstream_stats().await["paths"][path]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Scripts the next `count` answers of `path`.
    pub async fn fault(&self, path: &str, status: u16, count: Option<u32>, body: Option<&str>) {
        let mut spec = serde_json::json!({"path": path, "status": status});
        if let Some(c) = count {
            spec["count"] = c.into();
        }
        if let Some(b) = body {
            spec["body"] = b.into();
        }
        self.fault_spec(&spec).await;
    }

    /// Scripts a fault from a full `POST /_faults` spec (any `kind`: truncate, html, reset, hang).
    pub async fn fault_spec(&self, spec: &Value) {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/_faults", self.upstream.addr()))
            .json(spec)
            .send()
            .await
            .expect("fault");
        assert!(resp.status().is_success(), "fault {spec} accepted");
    }

    /// Stops the app (keeping upstream and data dir) and returns what a restart needs.
    pub async fn stop_app(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Starts a new app on the same data dir and upstream.
    pub async fn restart_app(&mut self, tweak: impl FnOnce(&mut Settings)) {
        self.stop_app().await;
        let mut settings = test_settings(self.data_dir.path(), &self.upstream);
        tweak(&mut settings);
        let app = Application::build(settings, hooks(&self.clock))
            .await
            .expect("app restarts");
        self.base = format!("http://{}", app.http_addr());
        self.app = Some(app);
    }

    pub async fn shutdown(mut self) {
        self.stop_app().await;
    }

    /// When the service's OpenDota budget is paused for more than a second (spent, or a 429,
    /// until the next calendar minute), moves the shared clock to 300 ms before that minute
    /// ends: the window is still crossed for real, by the service and the fixture alike, but
    /// the wait is short. Returns whether the clock was moved. The pause is read from a status
    /// snapshot taken after the call: an older one may still show the pause of a window the
    /// clock has already left, and moving the clock on it would skip a whole window.
    pub async fn hurry_to_next_window(&self) -> bool {
        self.hurry_service_to_next_window("opendota").await
    }

    /// [`Self::hurry_to_next_window`] for the budget of `service` (`opendota`, `steam`, ...).
    pub async fn hurry_service_to_next_window(&self, service: &str) -> bool {
        let status = self.queue_status_now().await;
        let paused_ms = status["services"][service]["budget"]["pausedForMs"]
            .as_u64()
            .unwrap_or(0);
        let now = self.clock.now();
        let secs = now
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let minute_end = UNIX_EPOCH + Duration::from_secs((secs / 60 + 1) * 60);
        let target = minute_end - Duration::from_millis(300);
        if paused_ms <= 1000 || target <= now {
            return false;
        }
        self.clock.set(target);
        true
    }
}

/// The view of a `?include=progress` team answer once every match and every player of them is
/// ready; `None` before (or on any other answer).
pub async fn import_complete(resp: reqwest::Response) -> Option<Value> {
    if resp.status() != 200 {
        return None;
    }
    let v: Value = resp.json().await.ok()?;
    let p = &v["progress"];
    let done = p["matchesTotal"].as_u64()? > 0
        && p["matchesReady"] == p["matchesTotal"]
        && p["playersReady"] == p["playersTotal"];
    done.then_some(v)
}

/// The fixture upstream's request log (`/_stats`).
pub async fn upstream_stats(upstream: &FixtureUpstream) -> Value {
    reqwest::get(format!("http://{}/_stats", upstream.addr()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}

/// A clock shared by a test's fixture upstream and service, set 1 s into a calendar minute so
/// a test has the rest of that minute before the first window ends.
pub fn clock_at_a_minute_start() -> Clock {
    let clock = Clock::system();
    let secs = clock
        .now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    clock.set(UNIX_EPOCH + Duration::from_secs((secs / 60 + 1) * 60 + 1));
    clock
}

/// Polls `check` every 50 ms until it yields `Some`, or `None` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settings for a demo-mode instance: like [`test_settings`], but the app starts its own
/// fixture upstream over the bundled data set (`fixtures/demo`), as `--demo` does.
pub fn demo_settings(data_dir: &Path) -> Settings {
    let mut s = local_settings(data_dir);
    s.demo = true;
    s.demo_dir = repo_path("fixtures/demo");
    s
}

/// A running demo-mode app and its temp data dir.
pub struct DemoApp {
    pub app: Option<Application>,
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
}

/// Starts the real app in demo mode (see [`demo_settings`]).
pub async fn spawn_demo_app() -> DemoApp {
    init_tracing();
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let app = Application::build(demo_settings(data_dir.path()), Hooks::default())
        .await
        .expect("demo app starts");
    DemoApp {
        base: format!("http://{}", app.http_addr()),
        app: Some(app),
        http: reqwest::Client::new(),
        data_dir,
    }
}

impl DemoApp {
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.base, path))
            .send()
            .await
            .expect("POST")
    }

    pub async fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}
