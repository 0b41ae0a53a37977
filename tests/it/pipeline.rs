//! End-to-end behaviour of the core pipeline against real components: embedded nats-server,
//! redb, warp and the fixture upstream over HTTP.

use crate::common;

use common::fixtures::ten_players;
use common::{Fixtures, WAIT, spawn_app, spawn_app_with};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use futures::StreamExt;
use serde_json::Value;

#[actix_rt::test]
async fn posted_match_is_queued_then_served_and_its_players_follow() {
    let fx = Fixtures::new();
    let mut players = ten_players(1000);
    players[3] = None; // anonymous
    fx.match_with_players(8054301932, &players);
    let t = spawn_app(fx).await;

    let resp = t.post("/api/matches/8054301932").await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        "/api/matches/8054301932"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["signature"], "match:8054301932");

    let data = t.get_when_ready("/api/matches/8054301932").await;
    assert_eq!(data["match_id"], 8054301932u64);
    assert!(data.get("status").is_none(), "no wrapper around the match");
    assert_eq!(data["players"].as_array().unwrap().len(), 10);

    // Players become ready without being asked for.
    for p in players.iter().flatten() {
        let player = t.get_when_ready(&format!("/api/players/{p}/data")).await;
        assert_eq!(player["profile"]["account_id"], *p);
    }
    let post = t.post("/api/matches/8054301932").await;
    assert_eq!(post.status(), 200);
    let body: Value = post.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    t.shutdown().await;
}

#[actix_rt::test]
async fn twenty_concurrent_requests_for_one_match_cause_one_upstream_call() {
    let fx = Fixtures::new();
    fx.match_with_players(111, &ten_players(2000));
    let t = spawn_app_with(
        fx,
        FixtureConfig {
            latency: std::time::Duration::from_millis(200),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let requests = (0..20).map(|i| {
        let t = &t;
        async move {
            if i % 2 == 0 {
                t.post("/api/matches/111").await.status().as_u16()
            } else {
                t.get("/api/matches/111").await.status().as_u16()
            }
        }
    });
    let statuses = futures::future::join_all(requests).await;
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 200),
        "{statuses:?}"
    );
    t.get_when_ready("/api/matches/111").await;
    for _ in 0..5 {
        t.post("/api/matches/111").await;
    }
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/111").await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn anonymous_players_are_never_queued_and_shared_players_are_fetched_once() {
    let fx = Fixtures::new();
    let mut a = ten_players(3000);
    a[0] = None;
    a[9] = None;
    let mut b = ten_players(4000);
    b[0] = Some(3001); // plays in both matches
    b[1] = Some(3002);
    fx.match_with_players(201, &a).match_with_players(202, &b);
    let t = spawn_app(fx).await;
    t.post("/api/matches/201").await;
    t.post("/api/matches/202").await;
    t.get_when_ready("/api/matches/201").await;
    t.get_when_ready("/api/matches/202").await;
    for p in [3001u64, 3002, 3005, 4005] {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    let paths = stats["paths"].as_object().unwrap();
    let players: Vec<&String> = paths
        .keys()
        .filter(|k| k.starts_with("/opendota/players/"))
        .collect();
    // 8 public in a, 10 in b, 2 shared: 16 distinct players, each fetched once.
    assert_eq!(players.len(), 16, "{players:?}");
    for p in players {
        assert_eq!(stats["paths"][p]["requests"], 1, "{p} fetched once");
    }
    assert!(!paths.keys().any(|k| k.contains("null")));
    t.shutdown().await;
}

#[actix_rt::test]
async fn ready_events_are_published_once_per_stored_resource() {
    let fx = Fixtures::new();
    let mut players = ten_players(5000);
    players[4] = None;
    fx.match_with_players(301, &players);
    let t = spawn_app(fx).await;
    let client = async_nats::connect(t.app().nats_url()).await.unwrap();
    let mut sub = client.subscribe("dota.ready.>").await.unwrap();
    client.flush().await.unwrap();

    t.post("/api/matches/301").await;
    let mut subjects = Vec::new();
    let expected = 1 + 9;
    while subjects.len() < expected {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("event in time")
            .expect("subscription open");
        let body: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert!(body["fetchedAt"].is_string());
        subjects.push(msg.subject.to_string());
    }
    // No extra events arrive for the same resources.
    let extra = tokio::time::timeout(std::time::Duration::from_millis(500), sub.next()).await;
    assert!(extra.is_err(), "unexpected extra event: {extra:?}");
    assert!(subjects.contains(&"dota.ready.match.301".to_string()));
    assert!(subjects.contains(&"dota.ready.player.5000".to_string()));
    let mut dedup = subjects.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), subjects.len(), "one event per resource");
    t.shutdown().await;
}
