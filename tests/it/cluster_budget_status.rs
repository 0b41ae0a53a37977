//! With `--store nats`, `/api/queue/status` shows the budget every instance shares (`scope:
//! cluster`): the calls one instance made are in every instance's status, read from the
//! shared counters in the background (the route still serves a snapshot). Two in-process
//! instances on a real 3-node JetStream cluster, one fixture upstream.

use std::time::Duration;

use crate::common;

use common::Fixtures;
use common::fleet::Fleet;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

const TEAM: u64 = 9_517_600;
const LEAGUE: u64 = 16_436;
const FIRST_MATCH: u64 = 8_200_000_000;
const FIRST_PLAYER: u64 = 430_000_000;
const MATCHES: u64 = 3;

/// Calls to OpenDota the upstream answered (every path under `/opendota/`).
async fn opendota_calls(fleet: &Fleet) -> u64 {
    let stats = fleet.upstream_stats().await;
    stats["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .filter(|(path, _)| path.starts_with("/opendota/"))
        .map(|(_, v)| v["requests"].as_u64().unwrap_or(0))
        .sum()
}

fn window<'a>(budget: &'a Value, name: &str) -> &'a Value {
    budget["windows"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["window"] == name))
        .unwrap_or_else(|| panic!("a {name} window: {budget}"))
}

#[actix_rt::test]
async fn every_instance_shows_the_calls_the_cluster_made() {
    let fx = Fixtures::new();
    fx.league_team(
        TEAM,
        "Shared Budget",
        LEAGUE,
        MATCHES,
        4,
        (FIRST_MATCH, FIRST_PLAYER),
    );
    let mut fleet = Fleet::start(1, fx, FixtureConfig::default(), |_| {}).await;
    let team = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");
    let progress = format!("{team}&include=progress");
    assert_eq!(fleet.post(0, &team).await.status(), 202);
    common::wait_for(Duration::from_secs(60), || async {
        common::import_complete(fleet.get(0, &progress).await).await
    })
    .await
    .expect("the import on instance 0 completes");
    let calls = opendota_calls(&fleet).await;
    assert!(calls > MATCHES, "the import called OpenDota: {calls}");

    // Instance 1 starts once the import is done (the instances share one job queue), so it
    // made no call; its status counts instance 0's, from the shared counters.
    assert_eq!(fleet.add(|_| {}).await, 1);
    let status = common::wait_for(common::WAIT, || async {
        let status: Value = fleet.get(1, "/api/queue/status").await.json().await.ok()?;
        let budget = status["services"]["opendota"]["budget"].clone();
        (window(&budget, "day")["used"] == calls).then_some(budget)
    })
    .await;
    let budget = status.unwrap_or_else(|| panic!("instance 1 shows the {calls} calls"));
    assert_eq!(budget["scope"], "cluster", "{budget}");
    assert_eq!(
        budget["grantedTotal"], 0,
        "instance 1's own grants: {budget}"
    );
    let day = window(&budget, "day");
    assert_eq!(budget["day"]["remaining"], day["remaining"], "{budget}");
    assert_eq!(
        day["remaining"].as_u64(),
        Some(day["limit"].as_u64().unwrap() - calls),
        "{budget}"
    );
    // Instance 0 shows the same counters, once its own snapshot (taken in the background,
    // so it may be from before the last calls) is read again.
    let own = common::wait_for(common::WAIT, || async {
        let status: Value = fleet.get(0, "/api/queue/status").await.json().await.ok()?;
        let budget = status["services"]["opendota"]["budget"].clone();
        (window(&budget, "day")["used"] == calls).then_some(budget)
    })
    .await;
    let own = own.unwrap_or_else(|| panic!("instance 0 shows the {calls} calls"));
    assert_eq!(own["scope"], "cluster", "{own}");
}
