//! `dota-orchestrator serve` in demo mode (set by `--config`) end to end: the real binary starts its embedded
//! nats-server and the in-process fixture upstream with the bundled data set, and a demo
//! match becomes ready over HTTP.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{WAIT, wait_for};

#[actix_rt::test]
async fn demo_mode_serves_a_demo_match_end_to_end() {
    common::init_tracing();
    let data = tempfile::tempdir().unwrap();
    // Demo mode and the NATS port come from a config file, so `main` must read it: without
    // `demo = true` no match could ever become ready offline.
    let config = data.path().join("dota.toml");
    std::fs::write(
        &config,
        "demo = true\nnats_port = 0\nhttp_addr = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dota-orchestrator"));
    cmd.args(["serve", "--config"]).arg(&config);
    common::demo_binary_paths(&mut cmd, data.path());
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let _guard = TermOnDrop(child.id());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("dota-orchestrator listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the binary prints its address");

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/matches/7930696222"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = wait_for(WAIT, || async {
        let r = http
            .get(format!("{base}/api/matches/7930696222"))
            .send()
            .await
            .ok()?;
        if r.status() == 200 {
            r.json().await.ok()
        } else {
            None
        }
    })
    .await
    .expect("demo match becomes ready");
    assert_eq!(body["match_id"], 7930696222u64);
    assert_eq!(body["leagueid"], 16435);
    assert_eq!(body["players"].as_array().map(Vec::len), Some(10));

    // SIGTERM: the service stops its nats-server and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "exits after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

/// Sends SIGTERM to the service if the test fails before it does, so no process (and no
/// nats-server child) outlives the test.
struct TermOnDrop(u32);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}
