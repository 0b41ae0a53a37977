//! What an operator sees of the running binary: `--log-format json` prints one JSON object per
//! line, every request has an `X-Request-Id`, every line a job logs carries that job's own
//! `job{kind,id}` span even with several jobs in flight, the OpenDota API key appears in no log
//! line and no metric, and the first scrape of `/metrics` already lists every counter at zero.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{WAIT, repo_path, wait_for};
use serde_json::Value;

const KEY: &str = "SECRET-KEY-4f1c9e";

/// The service binary in demo mode with JSON logs on stderr, on free ports and a temp data dir.
struct Service {
    child: Child,
    reader: std::thread::JoinHandle<String>,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Service {
    /// Starts the binary with `args` added to `serve`, logging at `rust_log`, and waits until
    /// it answers `/healthz`.
    async fn start(args: &[&str], rust_log: &str) -> Self {
        common::init_tracing();
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"));
        cmd.args([
            "--log-format",
            "json",
            "serve",
            "--demo",
            "--nats-port",
            "0",
        ])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(args);
        common::demo_binary_paths(&mut cmd, data.path());
        let mut child = cmd
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        // Drain stderr while the service runs: a full pipe would block its logging.
        let mut pipe = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        let service = Self {
            child,
            reader,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _data: data,
        };
        wait_for(Duration::from_secs(60), || async {
            service
                .http
                .get(service.url("/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        })
        .await
        .expect("service up");
        service
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn status(&self, path: &str) -> Option<u16> {
        let resp = self.http.get(self.url(path)).send().await.ok()?;
        Some(resp.status().as_u16())
    }

    async fn text(&self, path: &str) -> String {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        resp.text().await.unwrap()
    }

    /// Stops the service with SIGTERM and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.reader.join().unwrap()
    }
}

/// Every non-empty stderr line as JSON; panics on a line that is not.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .collect()
}

#[actix_rt::test]
async fn json_logs_carry_request_ids_and_never_the_api_key() {
    let service = Service::start(&["--opendota-api-key", KEY], "debug").await;
    let http = &service.http;

    // A client's request ID is echoed; without one, the service makes one.
    let resp = http
        .post(service.url("/api/matches/7930696222"))
        .header("x-request-id", "frontend-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "frontend-42");
    let resp = http
        .post(service.url("/api/matches/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"].len(), 36, "a UUID");
    // One success and one upstream 404, so both paths log.
    wait_for(WAIT, || async {
        let a = service.status("/api/matches/7930696222").await?;
        let b = service.status("/api/matches/1").await?;
        (a == 200 && b == 404).then_some(())
    })
    .await
    .expect("one ready, one failed");
    let metrics = service.text("/metrics").await;
    assert!(!metrics.contains(KEY));

    let stderr = service.stop();
    assert!(!stderr.contains(KEY), "the API key leaked into the logs");
    let lines = json_lines(&stderr);
    assert!(lines.len() > 10);
    for v in &lines {
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{v}");
    }
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    assert!(
        text.iter().any(|l| l.contains("frontend-42")),
        "the request span carries the request ID"
    );
    assert!(
        text.iter()
            .any(|l| l.contains("\"attempt\"") && l.contains("7930696222")),
        "job spans carry kind, id and attempt"
    );
}

/// The resource an upstream call was for, from the path it logs (`.../matches/{id}` or
/// `.../players/{id}`); `None` for other calls.
fn resource_of(path: &str) -> Option<(&'static str, &str)> {
    let mut segments = path.rsplit('/');
    let id = segments.next()?;
    match segments.next()? {
        "matches" => Some(("match", id)),
        "players" => Some(("player", id)),
        _ => None,
    }
}

#[actix_rt::test]
async fn concurrent_jobs_log_under_their_own_job_span() {
    let service = Service::start(
        &["--workers", "4", "--opendota-rate-limit-per-min", "6000"],
        "info,dota_orchestrator=debug",
    )
    .await;
    let matches: Vec<String> = std::fs::read_dir(repo_path("fixtures/demo/opendota/matches"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().file_stem()?.to_str()?.to_string()))
        .collect();
    assert!(
        matches.len() >= 4,
        "enough matches to keep every worker busy"
    );
    for id in &matches {
        let resp = service
            .http
            .post(service.url(&format!("/api/matches/{id}")))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
    }
    for id in &matches {
        let path = format!("/api/matches/{id}");
        wait_for(WAIT, || async {
            (service.status(&path).await? == 200).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{path} never became ready"));
    }
    // And a good part of their players, fetched by the same workers meanwhile.
    wait_for(WAIT, || async {
        let status: Value = serde_json::from_str(&service.text("/api/queue/status").await).ok()?;
        let completed = status["services"]["opendota"]["completed"].as_u64()?;
        (completed >= 2 * matches.len() as u64).then_some(())
    })
    .await
    .expect("players fetched");

    let stderr = service.stop();
    let mut calls: BTreeMap<&str, usize> = BTreeMap::new();
    let mut matches_called = BTreeSet::new();
    let lines = json_lines(&stderr);
    for v in &lines {
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        let jobs: Vec<&Value> = spans.iter().filter(|s| s["name"] == "job").collect();
        assert!(jobs.len() <= 1, "a job span inside another job's: {v}");
        if v["fields"]["message"] != "upstream call" {
            continue;
        }
        let Some((kind, id)) = v["fields"]["path"].as_str().and_then(resource_of) else {
            continue;
        };
        let job = jobs
            .first()
            .unwrap_or_else(|| panic!("an upstream call outside any job span: {v}"));
        assert_eq!(
            (job["kind"].as_str(), job["id"].as_str()),
            (Some(kind), Some(id)),
            "the call for {kind} {id} logged under another job's span: {v}"
        );
        *calls.entry(kind).or_default() += 1;
        if kind == "match" {
            matches_called.insert(id.to_string());
        }
    }
    assert_eq!(
        matches_called,
        matches.iter().cloned().collect::<BTreeSet<_>>(),
        "every match fetch logged its upstream call"
    );
    assert!(
        calls.get("player").copied().unwrap_or(0) > 0,
        "player fan-out ran alongside: {calls:?}"
    );
}

/// One sample line of the Prometheus text format: name, labels, value.
fn parse_sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, &str)> {
    let (series, value) = line.rsplit_once(' ')?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k, v.trim_matches('"')))
        })
        .collect();
    Some((name, labels, value))
}

#[actix_rt::test]
async fn a_fresh_service_exports_every_counter_series_at_zero() {
    // Its own process, so no other test's events are counted.
    let service = Service::start(&[], "warn").await;
    let text = service.text("/metrics").await;
    service.stop();
    let samples: Vec<_> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_sample)
        .collect();
    let zero = |name: &str, labels: &[(&str, &str)]| {
        let want: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let found = samples.iter().find(|(n, l, _)| *n == name && *l == want);
        match found {
            Some((_, _, value)) => assert_eq!(*value, "0", "{name} {want:?}"),
            None => panic!("{name} {want:?} is missing from the first scrape:\n{text}"),
        }
    };
    let kinds = ["match", "player", "player-stats", "team", "league"];
    let services = ["opendota", "dotabuff"];
    for kind in kinds {
        for priority in ["interactive", "bulk"] {
            for name in [
                "dota_jobs_queued_total",
                "dota_jobs_started_total",
                "dota_jobs_completed_total",
                "dota_jobs_failed_total",
            ] {
                zero(name, &[("kind", kind), ("priority", priority)]);
            }
        }
        zero("dota_job_retries_total", &[("kind", kind)]);
        for result in ["hit", "miss", "expired"] {
            zero(
                "dota_cache_lookups_total",
                &[("kind", kind), ("result", result)],
            );
        }
    }
    for service in services {
        zero("dota_rate_limit_waits_total", &[("service", service)]);
        for class in ["2xx", "4xx", "429", "5xx", "error"] {
            zero(
                "dota_upstream_requests_total",
                &[("service", service), ("status_class", class)],
            );
        }
    }
    zero("dota_nats_server_restarts_total", &[]);
}
