//! Negative caching: a permanent failure (an upstream 404 for a match still being played) is
//! reported for the failure TTL only, with `retryAt` and `Retry-After` saying when; after that
//! a GET queues a new attempt, as for a miss.

use crate::common;

use std::time::Duration;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app, spawn_app_with};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

/// `retryAt` of a failed body, as unix milliseconds.
fn retry_at_ms(body: &Value) -> i64 {
    let raw = body["retryAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no retryAt: {body}"));
    chrono::DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("retryAt {raw:?} is not RFC 3339: {e}"))
        .timestamp_millis()
}

fn retry_after_secs(resp: &reqwest::Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_rt::test]
async fn a_failed_body_says_when_the_default_failure_ttl_ends() {
    let t = spawn_app(Fixtures::new()).await;
    t.post("/api/matches/811").await;
    t.wait_status("/api/matches/811", 404).await;

    let before = chrono::Utc::now().timestamp_millis();
    let resp = t.get("/api/matches/811").await;
    assert_eq!(resp.status(), 404);
    let wait = retry_after_secs(&resp);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "failed", "{body}");
    // Default failure TTL: 600 s from the failure, which happened moments ago.
    assert!((590..=600).contains(&wait), "Retry-After {wait}");
    let until = retry_at_ms(&body) - before;
    assert!(
        (590_000..=600_000).contains(&until),
        "retryAt is {until} ms away"
    );
    // Still in force: GET reports it and fetches nothing.
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/811").await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_get_after_the_failure_ttl_queues_a_new_attempt() {
    let t = spawn_app_with(Fixtures::new(), FixtureConfig::default(), |s| {
        s.ttls.failures = Duration::from_secs(1);
    })
    .await;
    // The match is not on the upstream yet (still being played): 404, failed.
    t.post("/api/matches/812").await;
    let body = t.wait_status("/api/matches/812", 404).await;
    let now = chrono::Utc::now().timestamp_millis();
    assert!(retry_at_ms(&body) - now <= 1_000, "{body}");
    assert_eq!(t.upstream_requests("/opendota/matches/812").await, 1);

    // The game ends and OpenDota has it; a poller that only GETs sees it appear.
    t.fixtures.match_with_players(812, &ten_players(81_200));
    let data = t.get_when_ready("/api/matches/812").await;
    assert_eq!(data["match_id"], 812);
    assert!(t.upstream_requests("/opendota/matches/812").await >= 2);
    t.shutdown().await;
}
