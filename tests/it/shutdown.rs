//! SIGTERM with work in flight: the real binary holds a job whose upstream call hangs, gets
//! SIGTERM, hands the job back (nak) and exits within 10 s; started again on the same data
//! dir against an upstream that answers, it completes the job, so nothing was lost.

use crate::common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{WAIT, repo_path, wait_for};
use dota_orchestrator::fixture_upstream::{FixtureConfig, FixtureUpstream};

/// A match of the demo data set.
const MATCH: &str = "7930696222";
/// The bound on a graceful stop with work in flight.
const EXIT_WITHIN: Duration = Duration::from_secs(10);
/// Far longer than the test: the first run's fetch never gets its answer.
const HANG: Duration = Duration::from_secs(600);

/// The service binary against `upstream`, logging at info to a pipe drained by a thread.
struct Service {
    child: Child,
    logs: Option<std::thread::JoinHandle<String>>,
    base: String,
}

impl Service {
    async fn start(data: &Path, upstream: &FixtureUpstream, http: &reqwest::Client) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"))
            .args(["serve", "--nats-port", "0"])
            .args(["--http-addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .arg("--nats-conf")
            .arg(repo_path("nats.conf"))
            .args(["--opendota-url", &upstream.opendota_url()])
            .args(["--dotabuff-url", &upstream.dotabuff_url()])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let mut pipe = child.stderr.take().unwrap();
        // Drain stderr while the service runs: a full pipe would block its logging.
        let logs = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        let service = Self {
            child,
            logs: Some(logs),
            base: format!("http://127.0.0.1:{port}"),
        };
        let ready = format!("{}/readyz", service.base);
        answers_200(http, &ready, "/readyz answers 200").await;
        service
    }

    /// Sends SIGTERM and returns how long the process took to exit, whether it exited
    /// cleanly, and what it logged.
    async fn terminate(mut self) -> (Duration, bool, String) {
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = wait_for(WAIT, || {
            let exit = self.child.try_wait().expect("try_wait");
            async move { exit }
        })
        .await
        .expect("the service exits after SIGTERM");
        let took = sent.elapsed();
        let logs = self.logs.take().unwrap().join().unwrap();
        (took, exit.success(), logs)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // A failing test must not leave the service (or, through it, nats-server) behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn upstream(latency: Duration) -> FixtureUpstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    FixtureUpstream::start(
        FixtureConfig {
            dir: repo_path("fixtures/demo"),
            latency,
            ..FixtureConfig::default()
        },
        listener,
    )
    .await
    .unwrap()
}

/// Waits until `url` answers 200; panics with `what` otherwise.
async fn answers_200(http: &reqwest::Client, url: &str, what: &str) {
    wait_for(WAIT, || async {
        let r = http.get(url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await
    .expect(what);
}

async fn upstream_calls(http: &reqwest::Client, upstream: &FixtureUpstream) -> u64 {
    let url = format!("http://{}/_stats", upstream.addr());
    let stats: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
    stats["total"].as_u64().unwrap_or(0)
}

#[actix_rt::test]
async fn sigterm_during_a_hung_fetch_exits_within_10s_and_loses_nothing() {
    common::init_tracing();
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let slow = upstream(HANG).await;
    let service = Service::start(data.path(), &slow, &http).await;
    let url = format!("{}/api/matches/{MATCH}", service.base);

    assert_eq!(http.post(&url).send().await.unwrap().status(), 202);
    wait_for(WAIT, || async {
        (upstream_calls(&http, &slow).await >= 1).then_some(())
    })
    .await
    .expect("the fetch reached the upstream and hangs there");
    assert_eq!(http.get(&url).send().await.unwrap().status(), 202);

    let (took, clean, logs) = service.terminate().await;
    assert!(clean, "exit status is success; logs:\n{logs}");
    assert!(
        took < EXIT_WITHIN,
        "exited after {took:?}, bound {EXIT_WITHIN:?}; logs:\n{logs}"
    );
    assert!(
        logs.contains("handing the job back to the queue"),
        "the job in hand was nak'ed; logs:\n{logs}"
    );
    drop(slow);

    let fast = upstream(Duration::ZERO).await;
    let service = Service::start(data.path(), &fast, &http).await;
    let url = format!("{}/api/matches/{MATCH}", service.base);
    answers_200(
        &http,
        &url,
        "the job handed back at shutdown is done after the restart",
    )
    .await;
    assert!(upstream_calls(&http, &fast).await >= 1);
    let (_, clean, logs) = service.terminate().await;
    assert!(clean, "second run exits cleanly; logs:\n{logs}");
}
