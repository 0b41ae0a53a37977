//! Logs as an operator reads them: `--log-format json` prints one JSON object per line, every
//! request has an `X-Request-Id`, and the OpenDota API key appears in no log line and no metric.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{WAIT, repo_path, wait_for};

const KEY: &str = "SECRET-KEY-4f1c9e";

#[actix_rt::test]
async fn json_logs_carry_request_ids_and_never_the_api_key() {
    common::init_tracing();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--demo",
            "--nats-port",
            "0",
        ])
        .args(["--http-addr", &format!("127.0.0.1:{port}")])
        .args(["--opendota-api-key", KEY])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--nats-conf")
        .arg(repo_path("nats.conf"))
        .arg("--demo-dir")
        .arg(repo_path("fixtures/demo"))
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let pid = child.id();
    // Drain stderr while the service runs: a full pipe would block its logging.
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for(Duration::from_secs(60), || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await
    .expect("service up");

    // A client's request ID is echoed; without one, the service makes one.
    let resp = http
        .post(format!("{base}/api/matches/7930696222"))
        .header("x-request-id", "frontend-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "frontend-42");
    let resp = http
        .post(format!("{base}/api/matches/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"].len(), 36, "a UUID");
    // One success and one upstream 404, so both paths log.
    wait_for(WAIT, || async {
        let a = http
            .get(format!("{base}/api/matches/7930696222"))
            .send()
            .await
            .ok()?;
        let b = http
            .get(format!("{base}/api/matches/1"))
            .send()
            .await
            .ok()?;
        (a.status() == 200 && b.status() == 404).then_some(())
    })
    .await
    .expect("one ready, one failed");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(KEY));

    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let stderr = reader.join().unwrap();
    assert!(!stderr.contains(KEY), "the API key leaked into the logs");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("frontend-42")),
        "the request span carries the request ID"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"attempt\"") && l.contains("7930696222")),
        "job spans carry kind, id and attempt"
    );
}
