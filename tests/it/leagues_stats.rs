//! League info and player stats: documented fields when ready, failures when the upstream has
//! no such resource, and league matches queued only when asked.

use crate::common;

use common::{Fixtures, WAIT, spawn_app, wait_for};
use serde_json::Value;

#[actix_rt::test]
async fn player_stats_are_built_from_three_upstream_calls() {
    let fx = Fixtures::new();
    fx.player_stats(40927904);
    let t = spawn_app(fx).await;
    assert_eq!(t.post("/api/players/40927904/stats").await.status(), 202);
    let stats = t.get_when_ready("/api/players/40927904/stats").await;
    assert_eq!(stats["accountId"], "40927904");
    assert_eq!(stats["win"], 60);
    assert_eq!(stats["lose"], 40);
    assert_eq!(stats["winRate"], 0.6);
    let top = stats["topHeroes"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    assert_eq!(top[0]["heroId"], 8, "most played first");
    assert_eq!(stats["recentForm"]["matches"], 6);
    assert_eq!(stats["recentForm"]["results"], "WLWLWL");
    for what in ["wl", "heroes", "recentMatches"] {
        assert_eq!(
            t.upstream_requests(&format!("/opendota/players/40927904/{what}"))
                .await,
            1
        );
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn player_stats_for_an_unknown_player_fail_with_404() {
    let t = spawn_app(Fixtures::new()).await;
    t.post("/api/players/12345/stats").await;
    let body = t.wait_status("/api/players/12345/stats", 404).await;
    assert_eq!(body["status"], "failed");
    t.shutdown().await;
}

#[actix_rt::test]
async fn league_info_is_stored_and_its_matches_are_queued_only_when_asked() {
    let fx = Fixtures::new();
    fx.league(16435, "RD2L Season 33", &[801, 802]);
    fx.match_with_players(801, &[None; 10]);
    fx.match_with_players(802, &[None; 10]);
    let t = spawn_app(fx).await;
    t.post("/api/leagues/16435").await;
    let league = t.get_when_ready("/api/leagues/16435").await;
    assert_eq!(league["leagueId"], "16435");
    assert_eq!(league["name"], "RD2L Season 33");
    assert_eq!(league["tier"], "amateur");
    assert_eq!(league["matchIds"], serde_json::json!(["801", "802"]));
    // Not asked: no match fetched, even once every job has run.
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/801").await, 0);

    // Asked on the stored league: both matches are queued and fetched.
    let resp = t.post("/api/leagues/16435?queueMatches=true").await;
    assert_eq!(resp.status(), 200);
    for id in [801, 802] {
        t.get_when_ready(&format!("/api/matches/{id}")).await;
    }
    assert_eq!(t.upstream_requests("/opendota/matches/801").await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn unknown_league_fails_with_404() {
    let t = spawn_app(Fixtures::new()).await;
    t.post("/api/leagues/999").await;
    let body = t.wait_status("/api/leagues/999", 404).await;
    assert_eq!(body["status"], "failed");
    assert!(body["error"].as_str().unwrap().contains("404"));
    wait_for(WAIT, || async {
        let status: Value = t.get("/api/queue/status").await.json().await.unwrap();
        (status["services"]["opendota"]["failed"] == 1).then_some(())
    })
    .await
    .expect("counted as failed");
    t.shutdown().await;
}
