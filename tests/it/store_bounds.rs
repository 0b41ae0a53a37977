//! A bounded store: with a small `--store-max-gb` and more data than fits, the least recently
//! requested resources are evicted (never a tracked import's data), the file stays within the
//! bound, `GET /api/store` and `/metrics` say what went, and an evicted resource requested
//! again is simply fetched again. With `--retention-days`, what nobody requested for that
//! long goes, and a tracked import's data stays.

use crate::common;

use std::time::Duration;

use common::fixtures::{padded_match, ten_players};
use common::{Fixtures, TestApp, spawn_app_with, wait_for};
use dota_orchestrator::config::{Settings, TeamSource};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

const LEAGUE: u64 = 16435;
const TEAM: u64 = 9517508;
/// The tracked import's matches.
const TEAM_MATCHES: [u64; 2] = [7_000_001, 7_000_002];
/// Matches requested on their own, each with a large body.
const BIG_FIRST: u64 = 8_000_000;
const BIG_COUNT: u64 = 40;
/// Bytes of each big body: hex, so its stored (gzip) form is still about half of it.
const BIG_BYTES: usize = 250_000;

fn import_path() -> String {
    format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}")
}

fn big_match(id: u64) -> String {
    padded_match(id, BIG_BYTES)
}

fn fixtures() -> Fixtures {
    let fx = Fixtures::new();
    fx.opendota_team(TEAM, "Maple Syrup", &TEAM_MATCHES.map(|m| (m, LEAGUE)));
    for (i, m) in TEAM_MATCHES.iter().enumerate() {
        fx.match_with_players(*m, &ten_players(310_000_000 + i as u64 * 10));
    }
    for id in BIG_FIRST..BIG_FIRST + BIG_COUNT {
        fx.raw(&format!("opendota/matches/{id}.json"), big_match(id));
    }
    fx
}

fn opendota_teams(s: &mut Settings) {
    s.team_source = Some(TeamSource::Opendota);
    s.bounds.upkeep_secs = 1;
}

async fn store_status(t: &TestApp) -> Value {
    let resp = t.get("/api/store").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Every path of the tracked import: its record's matches and their players.
async fn import_paths(t: &TestApp) -> Vec<String> {
    let view = t.wait_import_complete(&import_path()).await;
    let mut paths: Vec<String> = TEAM_MATCHES
        .iter()
        .map(|m| format!("/opendota/matches/{m}"))
        .collect();
    for p in view["players"].as_array().unwrap() {
        paths.push(format!(
            "/opendota/players/{}",
            p["accountId"].as_str().unwrap()
        ));
    }
    paths
}

#[actix_rt::test]
async fn a_small_store_max_gb_evicts_the_least_recently_requested_and_refetches_on_request() {
    // 40 bodies of 250 KB are 10 MB as fetched and about 5.5 MB as stored (gzip): a 4 MB bound
    // cannot hold them all.
    let t = spawn_app_with(fixtures(), FixtureConfig::default(), |s| {
        opendota_teams(s);
        s.bounds.max_gb = Some(0.004);
    })
    .await;
    let max = 4_000_000u64;
    assert_eq!(t.post(&import_path()).await.status(), 202);
    let tracked = import_paths(&t).await;
    assert_eq!(tracked.len(), 2 + 20);

    for id in BIG_FIRST..BIG_FIRST + BIG_COUNT {
        t.post(&format!("/api/matches/{id}")).await;
        t.get_when_ready(&format!("/api/matches/{id}")).await;
    }
    // The upkeep brings the file back within the bound and says what it evicted.
    let status = wait_for(Duration::from_secs(60), || async {
        let s = store_status(&t).await;
        let evicted = s["upkeep"]["evictedTotal"]["size"].as_u64().unwrap_or(0);
        (evicted > 0 && s["bytes"].as_u64().unwrap() <= max).then_some(s)
    })
    .await
    .expect("the store is brought within its bound");
    assert_eq!(status["backend"], "redb");
    assert_eq!(status["maxBytes"], max);
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("dota_store_evictions_total{reason=\"size\"}") && !l.ends_with(" 0")
        ),
        "evictions counted"
    );
    assert!(metrics.contains("dota_store_bytes{store=\"redb\"}"));

    // The tracked import was not touched: its view is whole, and nothing of it was fetched
    // again.
    let view = t.wait_import_complete(&import_path()).await;
    assert_eq!(view["progress"]["matchesReady"], 2);
    assert_eq!(view["progress"]["playersReady"], 20);
    for path in &tracked {
        assert_eq!(t.upstream_requests(path).await, 1, "{path} fetched once");
    }

    // The first big match, stored first and not requested since, was evicted: a GET queues it
    // and it is fetched a second time.
    let first = format!("/api/matches/{BIG_FIRST}");
    assert_eq!(t.get(&first).await.status(), 202, "evicted");
    let again = t.get_when_ready(&first).await;
    assert_eq!(again["match_id"], BIG_FIRST);
    assert_eq!(
        t.upstream_requests(&format!("/opendota/matches/{BIG_FIRST}"))
            .await,
        2
    );
    // The last one, requested most recently, is still stored.
    let last = BIG_FIRST + BIG_COUNT - 1;
    assert_eq!(t.get(&format!("/api/matches/{last}")).await.status(), 200);
    t.shutdown().await;
}

#[actix_rt::test]
async fn retention_drops_what_nobody_requested_and_keeps_a_tracked_import() {
    // 0.00005 days is 4.32 s.
    let t = spawn_app_with(fixtures(), FixtureConfig::default(), |s| {
        opendota_teams(s);
        s.bounds.retention_days = Some(0.00005);
    })
    .await;
    assert_eq!(t.post(&import_path()).await.status(), 202);
    let tracked = import_paths(&t).await;
    let lone = format!("/api/matches/{BIG_FIRST}");
    t.post(&lone).await;
    t.get_when_ready(&lone).await;

    let status = wait_for(Duration::from_secs(60), || async {
        let s = store_status(&t).await;
        (s["upkeep"]["evictedTotal"]["retention"]
            .as_u64()
            .unwrap_or(0)
            >= 1)
            .then_some(s)
    })
    .await
    .expect("the lone match is dropped");
    assert_eq!(status["upkeep"]["evictedTotal"]["size"], 0);
    // It is gone; the import, tracked, is whole and was not fetched again.
    assert_eq!(t.get(&lone).await.status(), 202);
    let view = t.wait_import_complete(&import_path()).await;
    assert_eq!(view["progress"]["matchesReady"], 2);
    for path in &tracked {
        assert_eq!(t.upstream_requests(path).await, 1, "{path} fetched once");
    }
    t.get_when_ready(&lone).await;
    assert_eq!(
        t.upstream_requests(&format!("/opendota/matches/{BIG_FIRST}"))
            .await,
        2
    );
    t.shutdown().await;
}
