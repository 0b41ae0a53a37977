//! A request a person is waiting on is served before a team fan-out's remaining bulk jobs,
//! within the same rate budget. Crosses a calendar minute on purpose: the service and the
//! fixture share a clock that the test moves to just before the minute's end once the
//! interactive request waits, so the crossing is real but short.

use crate::common;

use std::time::Duration;

use common::fixtures::row;
use common::{Fixtures, WAIT, clock_at_a_minute_start, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

#[actix_rt::test]
async fn a_direct_match_request_overtakes_a_large_team_fan_out() {
    let fx = Fixtures::new();
    let team_matches: Vec<u64> = (1..=20).map(|i| 900_000 + i).collect();
    fx.dotabuff_team(
        4242,
        "Fan-out Five",
        &[team_matches.iter().map(|m| row(*m, 16435)).collect()],
    );
    for m in &team_matches {
        fx.match_with_players(*m, &[None; 10]);
    }
    fx.match_with_players(123, &[None; 10]);
    // A slow budget: 4 OpenDota calls per minute.
    let upstream = FixtureConfig {
        clock: clock_at_a_minute_start(),
        ..Default::default()
    };
    let t = spawn_app_with(fx, upstream, |s| {
        s.limits.opendota_per_minute = 4;
    })
    .await;
    t.post("/api/teams/4242/matches?leagueId=16435").await;
    // Wait until the fan-out is queued and the first window's budget is spent: with the
    // window spent and 4 calls a minute, the in-flight limit is 1, so one bulk job waits.
    wait_for(Duration::from_secs(30), || async {
        let s: Value = t.get("/api/queue/status").await.json().await.unwrap();
        let od = &s["services"]["opendota"];
        let spent = od["completed"].as_u64().unwrap() >= 4;
        let waiting = od["inFlight"].as_u64().unwrap() == 1;
        (spent && waiting).then_some(())
    })
    .await
    .expect("the fan-out spent this minute's budget and one bulk job waits");
    assert_eq!(t.post("/api/matches/123").await.status(), 202);
    let status: Value = t.queue_status_now().await;
    assert_eq!(
        status["services"]["opendota"]["inFlight"], 1,
        "the direct request waits (queued, or held for the next free slot): {status}"
    );
    assert_eq!(t.get("/api/matches/123").await.status(), 202);

    // The next window: the bulk job in hand goes first, then the interactive one. The clock
    // is moved once, to just before the next window; the one after it is a minute away, so
    // the direct request must be served in the next window and the counts below are read
    // before any later window starts.
    assert!(
        t.hurry_to_next_window().await,
        "this minute's budget is spent"
    );
    wait_for(WAIT, || async {
        (t.get("/api/matches/123").await.status() == 200).then_some(())
    })
    .await
    .expect("the direct request is served in the next window");
    // Not yet done: still in JetStream, or delivered and held by the dispatcher for a free
    // slot (unacked), which depends on when its batch pull ran.
    let status: Value = t.queue_status_now().await;
    let od = &status["services"]["opendota"];
    let not_done =
        od["queuedByPriority"]["bulk"].as_u64().unwrap() + od["unacked"].as_u64().unwrap();
    assert!(
        not_done >= 10,
        "most of the fan-out is still waiting: {status}"
    );
    let stats = t.upstream_stats().await;
    let fetched = team_matches
        .iter()
        .filter(|m| {
            stats["paths"]
                .get(format!("/opendota/matches/{m}"))
                .is_some()
        })
        .count();
    assert!(
        fetched < team_matches.len() / 2,
        "the direct match came before most of the fan-out ({fetched} of {} fetched)",
        team_matches.len()
    );
    t.shutdown().await;
}
