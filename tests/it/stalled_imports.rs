//! A tracked import that stalled is repaired. A player that an incomplete import waits for,
//! invalidated with no job, is queued again by TeamWatch after the grace, and the import
//! completes without anyone asking. A player whose job is running is left to it.
//!
//! Here the stall comes through the API: players invalidated by `/api/cache/invalidate`, then
//! their team re-imported (its match is still fresh, so the re-import queues no player). A lost
//! forced refetch leaves the same state (bench/soak.sh run 7).

use crate::common;

use std::time::Duration;

use common::fixtures::row;
use common::{Fixtures, spawn_app_hooked};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::json;

const TEAM: u64 = 9517508;
const LEAGUE: u64 = 16435;

async fn player_repairs(t: &common::TestApp) -> f64 {
    let text = t.get("/metrics").await.text().await.expect("metrics text");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(r#"dota_import_repairs_total{kind="player"}"#)?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_stalled_child_of_a_tracked_import_is_queued_again_after_the_grace() {
    let fx = Fixtures::new();
    fx.dotabuff_team(TEAM, "Maple Syrup", &[vec![row(701, LEAGUE)]]);
    let players: Vec<Option<u64>> = (0..10).map(|p| Some(70_000 + p)).collect();
    fx.match_with_players(701, &players);
    let t = spawn_app_hooked(
        fx,
        FixtureConfig::default(),
        |_| {},
        |h| h.import_repair_grace = Some(Duration::from_secs(1)),
    )
    .await;
    let path = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");
    t.post(&path).await;
    t.wait_import_complete(&path).await;
    t.wait_drained().await;
    let before = player_repairs(&t).await;

    let resp = t
        .http
        .post(format!("{}/api/cache/invalidate", t.base))
        .json(&json!({"items": [
            {"type": "teams", "id": TEAM.to_string()},
            {"type": "players", "id": "70000"},
            {"type": "players", "id": "70001"}
        ]}))
        .send()
        .await
        .expect("invalidate");
    assert_eq!(resp.status(), 200);
    // 70001's next answer hangs for 4 s, then the connection is cut: its job holds its claim
    // for 4 grace periods and more, then retries.
    t.fault_spec(
        &json!({"path": "/opendota/players/70001", "kind": "hang", "ms": 4000, "count": 1}),
    )
    .await;
    assert_eq!(t.post(&path).await.status(), 202);

    // Nobody asks for the players: TeamWatch queues both again by itself, and the import
    // completes.
    let view = t.wait_import_complete(&path).await;
    assert_eq!(view["progress"]["playersReady"], 10);
    t.wait_drained().await;
    // Past more graces and scans: nothing is queued again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = t.upstream_stats().await;
    assert_eq!(stats["paths"]["/opendota/players/70000"]["requests"], 2);
    assert_eq!(
        stats["paths"]["/opendota/players/70001"]["requests"], 3,
        "the first fetch, the hang and its retry: no second job while the first held the claim"
    );
    for p in 70_002..70_010 {
        assert_eq!(
            stats["paths"][&format!("/opendota/players/{p}")]["requests"],
            1,
            "player {p}"
        );
    }
    assert_eq!(stats["paths"]["/opendota/matches/701"]["requests"], 1);
    let repaired = player_repairs(&t).await - before;
    assert!(
        repaired >= 2.0,
        "the repairs are counted in dota_import_repairs_total: {repaired}"
    );
    t.shutdown().await;
}
