//! Concurrency follows the budget: with budget to spare and a slow upstream, the service has
//! more calls in flight than the old fixed pool of 4, never more than `--max-in-flight`, and
//! still fetches every resource exactly once without a single 429.

use crate::common;

use std::time::Duration;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app_with};
use dota_orchestrator::fixture_upstream::FixtureConfig;

/// The bound the test sets; the fixture must see at most this many requests at once.
const MAX_IN_FLIGHT: usize = 6;

#[actix_rt::test]
async fn calls_in_flight_rise_with_the_budget_up_to_max_in_flight() {
    let fx = Fixtures::new();
    let matches = [7_701u64, 7_702, 7_703];
    let mut players = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let ten = ten_players(70_000 + 100 * i as u64);
        fx.match_with_players(*m, &ten);
        players.extend(ten.into_iter().flatten());
    }
    let upstream = FixtureConfig {
        // Slow enough that calls overlap however slowly the machine starts them.
        latency: Duration::from_millis(300),
        ..Default::default()
    };
    let t = spawn_app_with(fx, upstream, |s| {
        s.limits.opendota_per_minute = 6_000;
        s.max_in_flight = MAX_IN_FLIGHT;
    })
    .await;
    for m in matches {
        assert_eq!(t.post(&format!("/api/matches/{m}")).await.status(), 202);
    }
    for p in &players {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    t.wait_drained().await;

    let stats = t.upstream_stats().await;
    let most = stats["inFlightMax"].as_u64().expect("inFlightMax");
    assert!(
        most <= MAX_IN_FLIGHT as u64,
        "the fixture saw {most} requests at once, bound {MAX_IN_FLIGHT}: {stats}"
    );
    assert!(
        most >= MAX_IN_FLIGHT as u64 - 1,
        "30 players with budget to spare should fill the bound, the fixture saw {most} at once"
    );
    assert_eq!(stats["rateLimited"], 0, "{stats}");
    let paths = stats["paths"].as_object().expect("paths");
    assert_eq!(
        paths.len(),
        matches.len() + players.len(),
        "every match and player, nothing else: {stats}"
    );
    for (path, counts) in paths {
        assert_eq!(counts["requests"], 1, "{path} fetched once: {stats}");
    }
    t.shutdown().await;
}
