//! Upstream failures end in a visible status and never poison the cache; retries, TTLs and
//! forced refreshes behave as the API promises.

use crate::common;

use std::time::Duration;

use common::fixtures::ten_players;
use common::{Fixtures, WAIT, spawn_app, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

#[actix_rt::test]
async fn match_becomes_ready_after_two_upstream_500s() {
    let fx = Fixtures::new();
    fx.match_with_players(401, &ten_players(6000));
    let t = spawn_app(fx).await;
    t.fault("/opendota/matches/401", 500, Some(2), None).await;
    t.post("/api/matches/401").await;
    let data = t.get_when_ready("/api/matches/401").await;
    assert_eq!(data["match_id"], 401);
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    assert_eq!(stats["paths"]["/opendota/matches/401"]["requests"], 3);
    assert_eq!(stats["paths"]["/opendota/matches/401"]["status"]["500"], 2);
    t.shutdown().await;
}

#[actix_rt::test]
async fn upstream_404_is_failed_with_a_reason_and_nothing_is_stored() {
    let t = spawn_app(Fixtures::new()).await;
    let resp = t.post("/api/matches/402").await;
    assert_eq!(resp.status(), 202);
    let body = t.wait_status("/api/matches/402", 404).await;
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"].as_str().unwrap().contains("404"),
        "reason names the upstream answer: {body}"
    );
    // Permanent at once: one upstream call, no retries.
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/402").await, 1);
    // GET keeps reporting the failure without fetching again.
    assert_eq!(t.get("/api/matches/402").await.status(), 404);
    assert_eq!(t.upstream_requests("/opendota/matches/402").await, 1);

    // Once the upstream has it, the next POST retries and succeeds.
    t.fixtures.match_with_players(402, &ten_players(6100));
    assert_eq!(t.post("/api/matches/402").await.status(), 202);
    let data = t.get_when_ready("/api/matches/402").await;
    assert_eq!(data["match_id"], 402);
    t.shutdown().await;
}

#[actix_rt::test]
async fn truncated_json_is_retried_and_failed_with_the_last_reason_and_never_stored() {
    let fx = Fixtures::new();
    let full = common::fixtures::match_json(403, &ten_players(6200)).to_string();
    fx.raw("opendota/matches/403.json", &full[..full.len() / 2]);
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| s.retry.max_attempts = 3).await;
    // The first two attempts see a bot-check page, the last one the cut body.
    t.fault_spec(&json!({"path": "/opendota/matches/403", "kind": "html", "count": 2}))
        .await;
    t.post("/api/matches/403").await;
    let body = t.wait_status("/api/matches/403", 502).await;
    assert_eq!(body["status"], "failed");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("truncated JSON") && error.contains("3 attempts"),
        "the failure names the last attempt's answer and the attempts: {body}"
    );
    // Retried, not given up after one cut body; no player of the half match was queued,
    // nothing was served as data.
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/403").await, 3);
    assert_eq!(t.upstream_requests("/opendota/players/6200").await, 0);

    // Fixed upstream + POST → retried, now stored.
    t.fixtures.raw("opendota/matches/403.json", &full);
    t.post("/api/matches/403").await;
    let data = t.get_when_ready("/api/matches/403").await;
    assert_eq!(data["players"].as_array().unwrap().len(), 10);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_truncated_then_good_answer_is_ready_with_the_good_body() {
    let fx = Fixtures::new();
    fx.match_with_players(407, &ten_players(6600));
    let t = spawn_app(fx).await;
    t.fault_spec(&json!({"path": "/opendota/matches/407", "kind": "truncate", "count": 1}))
        .await;
    t.fault_spec(&json!({"path": "/opendota/matches/407", "kind": "reset", "count": 1}))
        .await;
    t.post("/api/matches/407").await;
    let data = t.get_when_ready("/api/matches/407").await;
    assert_eq!(data, common::fixtures::match_json(407, &ten_players(6600)));
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/407").await, 3);
    t.shutdown().await;
}

#[actix_rt::test]
async fn opendota_invalid_id_answer_is_failed_at_once() {
    let fx = Fixtures::new();
    fx.match_with_players(408, &ten_players(6700));
    let t = spawn_app(fx).await;
    let invalid = r#"{"error":"invalid match_id"}"#;
    t.fault("/opendota/matches/408", 400, Some(1), Some(invalid))
        .await;
    t.post("/api/matches/408").await;
    let body = t.wait_status("/api/matches/408", 404).await;
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"].as_str().unwrap().contains("invalid match_id"),
        "{body}"
    );
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/408").await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn persistent_5xx_gives_up_after_the_attempt_limit() {
    let fx = Fixtures::new();
    fx.match_with_players(404, &ten_players(6300));
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| s.retry.max_attempts = 3).await;
    t.fault("/opendota/matches/404", 503, None, None).await;
    t.post("/api/matches/404").await;
    let body = t.wait_status("/api/matches/404", 502).await;
    assert!(
        body["error"].as_str().unwrap().contains("3 attempts"),
        "{body}"
    );
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/404").await, 3);
    t.shutdown().await;
}

#[actix_rt::test]
async fn expired_entry_is_refetched_on_post() {
    let fx = Fixtures::new();
    fx.match_with_players(405, &ten_players(6400));
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.ttls.matches = Duration::from_secs(1);
    })
    .await;
    t.post("/api/matches/405").await;
    t.get_when_ready("/api/matches/405").await;
    assert_eq!(t.post("/api/matches/405").await.status(), 200);
    assert_eq!(t.upstream_requests("/opendota/matches/405").await, 1);

    // After the TTL the copy is stale: GET still serves it and says so; POST queues a refetch.
    wait_for(WAIT, || async {
        (t.post("/api/matches/405").await.status() == 202).then_some(())
    })
    .await
    .expect("entry expires");
    wait_for(WAIT, || async {
        (t.upstream_requests("/opendota/matches/405").await == 2).then_some(())
    })
    .await
    .expect("refetched once");
    t.shutdown().await;
}

#[actix_rt::test]
async fn stale_data_is_served_while_a_forced_refresh_runs() {
    let fx = Fixtures::new();
    fx.match_with_players(406, &ten_players(6500));
    let t = spawn_app(fx).await;
    t.post("/api/matches/406").await;
    t.get_when_ready("/api/matches/406").await;
    for p in 6500..6510 {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    // Slow the upstream for the refresh so the stale window is observable.
    t.fault("/opendota/matches/406", 500, Some(1), None).await;
    let resp = t.get("/api/matches/406?force=true").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["x-cache-status"]
            .to_str()
            .unwrap()
            .starts_with("stale")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["match_id"], 406);
    // The refresh completes (after the one 500) and cascades to the players.
    wait_for(WAIT, || async {
        let r = t.get("/api/matches/406").await;
        (r.headers()["x-cache-status"] == "fresh").then_some(())
    })
    .await
    .expect("refreshed");
    wait_for(WAIT, || async {
        (t.upstream_requests("/opendota/players/6509").await == 2).then_some(())
    })
    .await
    .expect("force cascades to players");
    t.shutdown().await;
}
