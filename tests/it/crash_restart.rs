//! A crash leaves nothing behind that blocks a restart: the real binary, with its embedded
//! nats-server on a fixed port, is `kill -9`ed at random points of a team import and started
//! again each time with no clean-up. Every start becomes ready, the import completes with
//! nothing lost, no nats-server outlives its service, and no resource stored before a kill is
//! fetched again after it. Prints the redelivery overhead (upstream calls per resource) for
//! BENCHMARKS.md.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fixtures::{row, ten_players};
use common::{Fixtures, WAIT, repo_path, wait_for};
use dota_orchestrator::app::DB_FILE;
use dota_orchestrator::config::Ttls;
use dota_orchestrator::domain::ResourceKind;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use dota_orchestrator::store::Store;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const TEAM: u64 = 9517508;
const LEAGUE: u64 = 16435;
const MATCHES: u64 = 8;
const KILLS: usize = 10;
/// Upstream latency: long enough that fetches are in flight when a kill lands and that the
/// import spans all the kills, short enough to keep the test well under a minute.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(100);
/// A kill lands this long after the service answered `/readyz`, drawn uniformly.
const KILL_AFTER_MS: std::ops::Range<u64> = 50..700;

/// The service binary, run against the test's fixture upstream.
struct Service {
    child: Child,
    base: String,
}

impl Service {
    fn start(data: &Path, nats_port: u16, upstream: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"))
            .args(["serve", "--http-addr", "127.0.0.1:0", "--nats-port"])
            .arg(nats_port.to_string())
            .arg("--data-dir")
            .arg(data)
            .arg("--nats-conf")
            .arg(repo_path("nats.conf"))
            .args(["--opendota-url", &format!("{upstream}/opendota")])
            .args(["--dotabuff-url", &format!("{upstream}/dotabuff")])
            .args(["--opendota-rate-limit-per-min", "6000"])
            .args(["--opendota-daily-limit", "100000"])
            .args(["--dotabuff-rate-limit-per-min", "6000"])
            .args(["--retry-base-ms", "50"])
            // Four calls at a time, as the fixed pools of old: at the adaptive default the
            // import finishes before most kill points.
            .args(["--max-in-flight", "4"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("dota-orchestrator listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(WAIT) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("the service did not start: {:?}", child.wait());
            }
        };
        Self { child, base }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let url = format!("{}/readyz", self.base);
        wait_for(WAIT, || async {
            let r = http.get(&url).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await
        .expect("/readyz answers 200");
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A failing test must not leave the service (or, through it, nats-server) behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PIDs of processes whose command line names `store` (any nats-server on it), read straight
/// from /proc so the check does not rely on the service's own bookkeeping.
fn processes_using(store: &Path) -> Vec<u32> {
    let needle = store.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Upstream paths of the matches and players stored in the (dead) service's redb file.
fn stored_paths(data: &Path) -> Vec<String> {
    let store = Store::open(&data.join(DB_FILE), Ttls::default()).expect("redb opens after a kill");
    let mut paths = Vec::new();
    for (kind, prefix) in [
        (ResourceKind::Match, "/opendota/matches/"),
        (ResourceKind::Player, "/opendota/players/"),
    ] {
        for sig in store.stored_of_kind(kind).expect("stored resources") {
            paths.push(format!("{prefix}{}", sig.subject_id()));
        }
    }
    paths
}

/// The fixture upstream's counters (`GET /_stats`).
async fn upstream_stats(upstream: &str) -> Value {
    reqwest::get(format!("{upstream}/_stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats JSON")
}

/// The fixture upstream's request count per path.
async fn request_counts(upstream: &str) -> BTreeMap<String, u64> {
    upstream_stats(upstream).await["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(k, v)| (k.clone(), v["requests"].as_u64().unwrap_or(0)))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn team_fixtures() -> Fixtures {
    let fx = Fixtures::new();
    let rows: Vec<_> = (0..MATCHES).map(|i| row(7_100 + i, LEAGUE)).collect();
    fx.dotabuff_team(TEAM, "Maple Syrup", &[rows]);
    for i in 0..MATCHES {
        fx.match_with_players(7_100 + i, &ten_players(710_000 + 100 * i));
    }
    fx
}

#[actix_rt::test]
async fn kill_9_during_an_import_never_blocks_a_restart_and_loses_nothing() {
    common::init_tracing();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("kill points seeded with CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let fx = team_fixtures();
    let upstream = common::start_upstream(
        &fx,
        FixtureConfig {
            latency: UPSTREAM_LATENCY,
            ..Default::default()
        },
    )
    .await;
    let upstream_url = format!("http://{}", upstream.addr());
    let data_dir = tempfile::tempdir().expect("data dir");
    let data = data_dir.path().canonicalize().expect("canonical data dir");
    let store = data.join("nats");
    let nats_port = free_port();
    let http = reqwest::Client::new();
    let import = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");

    let mut kills_during_import = 0;
    // Upstream path of every resource stored before some kill → requests for it by then.
    let mut stored_before_kill: BTreeMap<String, u64> = BTreeMap::new();
    for kill in 0..KILLS {
        let service = Service::start(&data, nats_port, &upstream_url);
        service.wait_ready(&http).await;
        if kill == 0 {
            let r = http
                .post(format!("{}{import}", service.base))
                .send()
                .await
                .expect("POST import");
            assert_eq!(r.status(), 202);
        }
        let delay = Duration::from_millis(rng.random_range(KILL_AFTER_MS));
        tokio::time::sleep(delay).await;
        if !import_complete(&http, &service.base, &import).await {
            kills_during_import += 1;
        }
        service.kill_9();
        let counts = request_counts(&upstream_url).await;
        for path in stored_paths(&data) {
            let count = counts.get(&path).copied().unwrap_or(0);
            stored_before_kill.entry(path).or_insert(count);
        }
        // Every other time, wait for the orphan to go by itself: that is the parent-death
        // signal's work alone. Otherwise restart at once, as a process manager would, and
        // leave a still-exiting server to the start-up check.
        if kill % 2 == 0 {
            let gone = wait_for(Duration::from_secs(10), || async {
                processes_using(&store).is_empty().then_some(())
            })
            .await;
            assert!(
                gone.is_some(),
                "nats-server outlived its killed service: {:?}",
                processes_using(&store)
            );
        }
    }
    println!("{kills_during_import} of {KILLS} kills landed during the import");
    assert!(
        kills_during_import >= KILLS / 2,
        "the import must span most kill points to test anything"
    );

    let service = Service::start(&data, nats_port, &upstream_url);
    service.wait_ready(&http).await;
    let completed = wait_for(Duration::from_secs(30), || async {
        import_complete(&http, &service.base, &import)
            .await
            .then_some(())
    })
    .await;
    if completed.is_none() {
        let view = http.get(format!("{}{import}", service.base)).send().await;
        let queue = http
            .get(format!("{}/api/queue/status", service.base))
            .send()
            .await;
        panic!(
            "the import did not complete after the last restart; import: {}; queue: {}",
            text(view).await,
            text(queue).await
        );
    }
    assert_every_resource_ready(&http, &service.base).await;

    let stats = upstream_stats(&upstream_url).await;
    report_overhead(&stats, kills_during_import);
    let counts = request_counts(&upstream_url).await;
    let refetched_after_store: Vec<String> = stored_before_kill
        .iter()
        .filter(|(path, before)| counts.get(*path).copied().unwrap_or(0) > **before)
        .map(|(path, _)| path.clone())
        .collect();
    assert!(
        refetched_after_store.is_empty(),
        "stored before a kill, fetched again after it: {refetched_after_store:?}"
    );

    stop_gracefully(service).await;
    assert_eq!(
        processes_using(&store),
        Vec::<u32>::new(),
        "no nats-server left on the data dir"
    );
    println!("wall time {:.1}s", started.elapsed().as_secs_f64());
}

async fn text(r: reqwest::Result<reqwest::Response>) -> String {
    match r {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}

/// True when the import's progress says every match and player is ready (none failed).
async fn import_complete(http: &reqwest::Client, base: &str, import: &str) -> bool {
    let Ok(r) = http.get(format!("{base}{import}")).send().await else {
        return false;
    };
    if r.status() != 200 {
        return false;
    }
    let Ok(v) = r.json::<Value>().await else {
        return false;
    };
    let p = &v["progress"];
    p["matchesTotal"] == MATCHES
        && p["matchesReady"] == MATCHES
        && p["playersTotal"] == 10 * MATCHES
        && p["playersReady"] == 10 * MATCHES
        && p["failed"] == 0
}

async fn assert_every_resource_ready(http: &reqwest::Client, base: &str) {
    for i in 0..MATCHES {
        let m = http
            .get(format!("{base}/api/matches/{}", 7_100 + i))
            .send()
            .await
            .expect("GET match");
        assert_eq!(m.status(), 200, "match {} is stored", 7_100 + i);
        for p in ten_players(710_000 + 100 * i).into_iter().flatten() {
            let r = http
                .get(format!("{base}/api/players/{p}/data"))
                .send()
                .await
                .expect("GET player");
            assert_eq!(r.status(), 200, "player {p} is stored");
        }
    }
}

/// Upstream calls per resource: every distinct upstream path is one resource fetched once.
fn report_overhead(stats: &Value, kills_during_import: usize) {
    let paths = stats["paths"].as_object().expect("paths");
    let resources = paths.len() as u64;
    let calls = stats["total"].as_u64().expect("total");
    let refetched: Vec<String> = paths
        .iter()
        .filter(|(_, p)| p["requests"].as_u64().unwrap_or(0) > 1)
        .map(|(k, p)| format!("{k}×{}", p["requests"]))
        .collect();
    assert_eq!(resources, 1 + MATCHES + 10 * MATCHES, "{stats}");
    println!(
        "redelivery overhead: {calls} upstream calls for {resources} resources after {KILLS} kills \
         ({kills_during_import} during the import) = {:.1}% extra, {:.1} extra calls per kill \
         during the import; refetched: {}",
        100.0 * (calls - resources) as f64 / resources as f64,
        (calls - resources) as f64 / kills_during_import.max(1) as f64,
        refetched.join(", ")
    );
}

async fn stop_gracefully(mut service: Service) {
    let status = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = service.child.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "exits after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}
