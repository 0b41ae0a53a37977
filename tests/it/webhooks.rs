//! Signed webhooks against real receivers (small HTTP servers in the test): signatures that an
//! independent implementation verifies (the PyPI `standardwebhooks` package, and the Rust crate),
//! retries on the schedule with the same `webhook-id`, a restart between attempts, a 410 that
//! disables the endpoint, a private URL refused, bad bodies refused, and a hanging receiver
//! that does not hold up another endpoint.

use std::time::Duration;

use crate::common;

use common::receiver::{Received, Receiver};
use common::{Fixtures, TestApp, spawn_app_with};
use dota_orchestrator::config::{RetrySchedule, Settings};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

const MATCH: u64 = 7_930_696_222;

fn fast_schedule(s: &mut Settings) {
    s.events.webhook_allow_private = true;
    s.events.webhook_retry_schedule = RetrySchedule::parse("0s,300ms,300ms,300ms").unwrap();
}

async fn app(tweak: fn(&mut Settings)) -> TestApp {
    let fx = Fixtures::new();
    fx.match_with_players(MATCH, &[None; 10]);
    fx.match_with_players(MATCH + 1, &[None; 10]);
    spawn_app_with(fx, FixtureConfig::default(), tweak).await
}

async fn create(t: &TestApp, body: &Value) -> reqwest::Response {
    t.http
        .post(format!("{}/api/webhooks", t.base))
        .json(body)
        .send()
        .await
        .expect("POST /api/webhooks")
}

/// Creates an endpoint for `events` at `url`; returns `(id, secret)`.
async fn endpoint(t: &TestApp, url: &str, events: &[&str]) -> (String, String) {
    let resp = create(t, &json!({"url": url, "events": events})).await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{body}");
    (body["id"].as_str().unwrap().to_string(), secret)
}

/// Checks every signature with the Rust `standardwebhooks` crate and, when present (always in
/// CI), with the PyPI package in a separate Python process.
fn verify(secret: &str, received: &[Received]) {
    for r in received {
        let mut headers = reqwest::header::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, r.header(name).parse().unwrap());
        }
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(r.body.as_bytes(), &headers)
            .expect("signature verifies");
    }
    let python = std::env::var("DOTA_WEBHOOK_VERIFIER_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| common::repo_path(".tools/webhooks-venv/bin/python"));
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} missing: run DOTA_WITH_TEST_DEPS=1 scripts/install-deps.sh",
            python.display()
        );
        eprintln!(
            "skipping the PyPI standardwebhooks check: {} missing",
            python.display()
        );
        return;
    }
    let lines: String = received
        .iter()
        .map(|r| json!({"secret": secret, "body": r.body, "headers": r.headers}).to_string() + "\n")
        .collect();
    let mut child = std::process::Command::new(&python)
        .arg(common::repo_path("tests/webhooks/verify.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the Python verifier");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyPI standardwebhooks refused a signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[actix_rt::test]
async fn a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt_with_the_same_id() {
    let t = app(fast_schedule).await;
    let receiver = Receiver::start(&[500, 503]).await;
    let (id, secret) = endpoint(&t, &receiver.url, &["match.ready"]).await;
    t.post(&format!("/api/matches/{MATCH}")).await;
    let got = receiver.wait_for(3, common::WAIT).await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(
        ids[0].starts_with(&format!("ready:match:{MATCH}@")),
        "{ids:?}"
    );
    let body: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(body["signature"], format!("match:{MATCH}"));
    assert_eq!(
        got[2].header("ce-type"),
        "com.dota-orchestrator.match.ready"
    );
    assert_eq!(got[2].header("ce-id"), ids[0]);
    verify(&secret, &got);
    // Nothing more: the third attempt succeeded.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(receiver.received().len(), 3);
    let log: Value = t
        .get(&format!("/api/webhooks/{id}/deliveries"))
        .await
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["delivered", "retrying", "retrying"], "{log}");
    assert_eq!(log["deliveries"][0]["attempt"], 3);
    assert_eq!(log["deliveries"][2]["status"], 500);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_restart_between_attempts_loses_nothing() {
    fn slow_second(s: &mut Settings) {
        s.events.webhook_allow_private = true;
        s.events.webhook_retry_schedule = RetrySchedule::parse("0s,3s,1s").unwrap();
    }
    let mut t = app(slow_second).await;
    let receiver = Receiver::start(&[500]).await;
    let (_, secret) = endpoint(&t, &receiver.url, &["match.ready"]).await;
    t.post(&format!("/api/matches/{MATCH}")).await;
    receiver.wait_for(1, common::WAIT).await;
    t.restart_app(slow_second).await;
    let got = receiver.wait_for(2, common::WAIT).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got.len(), 2, "{got:?}");
    verify(&secret, &got);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_410_disables_the_endpoint() {
    let t = app(fast_schedule).await;
    let receiver = Receiver::start(&[410]).await;
    let (id, _) = endpoint(&t, &receiver.url, &["match.ready"]).await;
    t.post(&format!("/api/matches/{MATCH}")).await;
    receiver.wait_for(1, common::WAIT).await;
    let record = common::wait_for(common::WAIT, || async {
        let v: Value = t
            .get(&format!("/api/webhooks/{id}"))
            .await
            .json()
            .await
            .ok()?;
        v["disabled"].is_object().then_some(v)
    })
    .await
    .expect("the endpoint is disabled");
    assert_eq!(record["disabled"]["reason"], "gone");
    // Nothing more goes to it.
    t.post(&format!("/api/matches/{}", MATCH + 1)).await;
    t.get_when_ready(&format!("/api/matches/{}", MATCH + 1))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_hanging_receiver_does_not_hold_up_another_endpoint() {
    let t = app(fast_schedule).await;
    let hanging = Receiver::start(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).await;
    let healthy = Receiver::start(&[]).await;
    endpoint(&t, &hanging.url, &["match.ready", "player.ready"]).await;
    endpoint(&t, &healthy.url, &["match.ready"]).await;
    let started = std::time::Instant::now();
    t.post(&format!("/api/matches/{MATCH}")).await;
    t.post(&format!("/api/matches/{}", MATCH + 1)).await;
    healthy.wait_for(2, common::WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    hanging.wait_for(2, common::WAIT).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn private_urls_unknown_events_and_bad_bodies_are_refused() {
    let t = app(|_| {}).await;
    let refused = [
        json!({"url": "http://127.0.0.1:9/hook", "events": ["match.ready"]}),
        json!({"url": "http://localhost/hook", "events": ["match.ready"]}),
        json!({"url": "http://169.254.169.254/latest", "events": ["team.ready"]}),
        json!({"url": "ftp://example.com/hook", "events": ["match.ready"]}),
        json!({"url": "https://example.com/hook", "events": ["match.done"]}),
        json!({"url": "https://example.com/hook", "events": []}),
        json!({"url": "https://example.com/hook"}),
        json!({"url": "https://example.com/hook", "events": ["match.ready"], "filter": {"teamId": "1"}}),
        json!(["not", "an", "object"]),
    ];
    for body in refused {
        let resp = create(&t, &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert!(err["error"].is_string(), "{err}");
    }
    let resp = t
        .http
        .post(format!("{}/api/webhooks", t.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(t.get("/api/webhooks/ep_nope").await.status(), 404);
    let list: Value = t.get("/api/webhooks").await.json().await.unwrap();
    assert_eq!(list["webhooks"], json!([]));
    t.shutdown().await;
}

#[actix_rt::test]
async fn endpoints_are_listed_rotated_and_deleted() {
    let t = app(fast_schedule).await;
    let receiver = Receiver::start(&[]).await;
    let (id, old) = endpoint(&t, &receiver.url, &["match.ready"]).await;
    let listed: Value = t.get("/api/webhooks").await.json().await.unwrap();
    assert_eq!(listed["webhooks"][0]["id"], id);
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
    let rotated: Value = t
        .post(&format!("/api/webhooks/{id}/rotate-secret"))
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    t.post(&format!("/api/matches/{MATCH}")).await;
    let got = receiver.wait_for(1, common::WAIT).await;
    // Both secrets sign during the rotation.
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(&old, &got);
    verify(&new, &got);
    let resp = t
        .http
        .delete(format!("{}/api/webhooks/{id}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(t.get(&format!("/api/webhooks/{id}")).await.status(), 404);
    t.shutdown().await;
}
