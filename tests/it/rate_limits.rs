//! The service keeps within OpenDota's fixed-window budget, and absorbs 429s when its own
//! limit is set higher than the upstream's. These tests cross a calendar minute on purpose,
//! so each takes up to a minute of wall time (they run in parallel).

use crate::common;

use std::time::Duration;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;

/// Posts two matches (2 + 20 players = 22 resources) and waits until all are ready.
async fn import_two_matches(t: &common::TestApp) {
    t.post("/api/matches/601").await;
    t.post("/api/matches/602").await;
    let limit = Duration::from_secs(150);
    for path in std::iter::once("/api/matches/601".to_string())
        .chain(std::iter::once("/api/matches/602".to_string()))
        .chain(
            (7000..7010)
                .chain(7100..7110)
                .map(|p| format!("/api/players/{p}/data")),
        )
    {
        wait_for(limit, || async {
            (t.get(&path).await.status() == 200).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{path} never became ready"));
    }
}

fn fixtures() -> Fixtures {
    let fx = Fixtures::new();
    fx.match_with_players(601, &ten_players(7000))
        .match_with_players(602, &ten_players(7100));
    fx
}

#[actix_rt::test]
async fn matching_limits_cause_no_upstream_429() {
    let upstream = FixtureConfig {
        rate_limit_per_min: Some(15),
        ..Default::default()
    };
    let t = spawn_app_with(fixtures(), upstream, |s| s.limits.opendota_per_minute = 15).await;
    import_two_matches(&t).await;
    let stats = t.upstream_stats().await;
    assert_eq!(stats["rateLimited"], 0, "{stats}");
    assert_eq!(stats["total"], 22, "each resource fetched once: {stats}");
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_service_limit_above_the_upstreams_absorbs_429s() {
    let upstream = FixtureConfig {
        rate_limit_per_min: Some(15),
        ..Default::default()
    };
    let t = spawn_app_with(fixtures(), upstream, |s| s.limits.opendota_per_minute = 600).await;
    // The remaining-budget headers usually keep the service in step before the upstream has
    // to refuse; a concurrent burst can still overshoot. Make the push-back certain: the
    // upstream also refuses two requests outright, as OpenDota does when its count differs.
    t.fault(
        "/opendota/players/7003",
        429,
        Some(1),
        Some(r#"{"error":"rate limit exceeded"}"#),
    )
    .await;
    t.fault(
        "/opendota/players/7006",
        429,
        Some(1),
        Some(r#"{"error":"rate limit exceeded"}"#),
    )
    .await;
    import_two_matches(&t).await;
    let stats = t.upstream_stats().await;
    assert!(stats["rateLimited"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["failed"], 0, "{stats}");
    let status: serde_json::Value = t.get("/api/queue/status").await.json().await.unwrap();
    assert_eq!(status["services"]["opendota"]["failed"], 0);
    assert_eq!(status["services"]["opendota"]["completed"], 22);
    t.shutdown().await;
}
