//! A stop or restart loses nothing: stored data is served from redb without upstream calls,
//! and jobs queued but not done before the stop are completed after it.

use crate::common;

use common::{Fixtures, WAIT, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;

fn anonymous_match(fx: &Fixtures, id: u64) {
    fx.match_with_players(id, &[None; 10]);
}

#[actix_rt::test]
async fn restart_serves_stored_data_and_finishes_queued_jobs() {
    let fx = Fixtures::new();
    for id in [501, 502, 503] {
        anonymous_match(&fx, id);
    }
    // A daily budget of one call: the first match is fetched, the others stay queued.
    let mut t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.limits.opendota_per_day = 1;
    })
    .await;
    t.post("/api/matches/501").await;
    t.get_when_ready("/api/matches/501").await;
    assert_eq!(t.post("/api/matches/502").await.status(), 202);
    assert_eq!(t.post("/api/matches/503").await.status(), 202);
    wait_for(WAIT, || async {
        let s: serde_json::Value = t.get("/api/queue/status").await.json().await.unwrap();
        let od = &s["services"]["opendota"];
        // Unacked, not in flight: a job delivered and held for a free slot is neither queued
        // nor running yet.
        (od["queued"].as_u64().unwrap() + od["unacked"].as_u64().unwrap() == 2).then_some(())
    })
    .await
    .expect("two jobs waiting for budget");
    assert_eq!(t.upstream_stats().await["total"], 1);

    t.restart_app(|_| {}).await;

    // Stored data comes from redb: no new upstream call for it.
    let data = t.get_when_ready("/api/matches/501").await;
    assert_eq!(data["match_id"], 501);
    assert_eq!(t.upstream_requests("/opendota/matches/501").await, 1);
    // The queued jobs finish without anyone asking again.
    for id in [502, 503] {
        wait_for(WAIT, || async {
            (t.upstream_requests(&format!("/opendota/matches/{id}"))
                .await
                == 1)
                .then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("match {id} fetched after restart"));
        let data = t.get_when_ready(&format!("/api/matches/{id}")).await;
        assert_eq!(data["match_id"], id);
    }
    t.wait_drained_after_restart().await;
    assert_eq!(
        t.upstream_stats().await["total"],
        3,
        "nothing fetched twice"
    );
    t.shutdown().await;
}
