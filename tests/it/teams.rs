//! Team imports end to end: Dotabuff pages (all of them, one league only), the whole data
//! graph, progress, the completion event, the OpenDota fallback and forced refreshes.

use crate::common;

use std::time::Duration;

use common::fixtures::{row, ten_players};
use common::{Fixtures, WAIT, spawn_app, spawn_app_with, wait_for};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use futures::StreamExt;
use serde_json::Value;

const TEAM: u64 = 9517508;
const LEAGUE: u64 = 16435;

/// Three pages; page 2 mixes in two matches of another league.
fn three_page_team(fx: &Fixtures) -> Vec<u64> {
    fx.dotabuff_team(
        TEAM,
        "Maple Syrup",
        &[
            vec![row(101, LEAGUE), row(102, LEAGUE)],
            vec![row(103, LEAGUE), row(901, 16500), row(902, 16500)],
            vec![row(104, LEAGUE)],
        ],
    );
    let ours = vec![101, 102, 103, 104];
    for (i, id) in ours.iter().enumerate() {
        // Players overlap between matches: 5 regulars + 5 opponents per match.
        let mut players: Vec<Option<u64>> = (0..5).map(|p| Some(10_000 + p)).collect();
        players.extend((0..5).map(|p| Some(20_000 + 10 * i as u64 + p)));
        fx.match_with_players(*id, &players);
    }
    ours
}

fn import_path(team: u64, league: u64) -> String {
    format!("/api/teams/{team}/matches?leagueId={league}")
}

async fn wait_complete(t: &common::TestApp, path: &str) -> Value {
    t.wait_import_complete(path).await
}

#[actix_rt::test]
async fn team_import_fetches_every_page_one_league_and_the_whole_graph() {
    let fx = Fixtures::new();
    let ours = three_page_team(&fx);
    let t = spawn_app(fx).await;
    let client = async_nats::connect(t.app().nats_url()).await.unwrap();
    let mut team_events = client.subscribe("dota.ready.team.>").await.unwrap();
    let mut all_events = client.subscribe("dota.ready.>").await.unwrap();
    client.flush().await.unwrap();

    let path = import_path(TEAM, LEAGUE);
    let resp = t.post(&path).await;
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["teamId"], TEAM.to_string());
    assert_eq!(body["leagueId"], LEAGUE.to_string());
    assert!(body["matchIds"].is_array());

    let view = wait_complete(&t, &path).await;
    assert!(view.get("status").is_none());
    assert_eq!(view["teamName"], "Maple Syrup");
    assert_eq!(view["leagueName"], "RD2L Season 33");
    assert_eq!(view["source"], "dotabuff");
    let ids: Vec<String> = ours.iter().map(u64::to_string).collect();
    assert_eq!(view["matchIds"], serde_json::json!(ids));
    assert_eq!(
        view["matchIdsByLeague"]["16500"],
        serde_json::json!(["901", "902"])
    );
    assert_eq!(view["progress"]["matchesTotal"], 4);
    assert_eq!(view["progress"]["playersTotal"], 5 + 4 * 5);
    assert_eq!(view["matches"].as_array().unwrap().len(), 4);
    assert_eq!(view["players"].as_array().unwrap().len(), 25);
    // Only the league's matches were fetched; every page was read once.
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    assert!(stats["paths"].get("/opendota/matches/901").is_none());
    for page in ["", "?page=2", "?page=3"] {
        let key = format!("/dotabuff/esports/teams/{TEAM}/matches{page}");
        assert_eq!(stats["paths"][&key]["requests"], 1, "{key}");
    }
    assert!(
        stats["paths"]
            .get(format!("/dotabuff/esports/teams/{TEAM}/matches?page=4"))
            .is_none()
    );

    // The team event arrives once, after every match and player event.
    let team_event = tokio::time::timeout(WAIT, team_events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        team_event.subject.as_str(),
        format!("dota.ready.team.{TEAM}.{LEAGUE}")
    );
    let mut before_team = 0;
    while let Ok(Some(msg)) =
        tokio::time::timeout(Duration::from_millis(300), all_events.next()).await
    {
        if msg.subject.starts_with("dota.ready.team.") {
            break;
        }
        before_team += 1;
    }
    assert_eq!(
        before_team,
        4 + 25,
        "all resources were announced before the team"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), team_events.next())
            .await
            .is_err(),
        "the team event is published once"
    );

    // A plain re-import within the TTL answers ready and fetches nothing.
    let total = t.upstream_stats().await["total"].clone();
    let again = t.post(&path).await;
    assert_eq!(again.status(), 200);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["matchIds"].as_array().unwrap().len(), 4);
    assert_eq!(t.upstream_stats().await["total"], total);
    t.shutdown().await;
}

#[actix_rt::test]
async fn dotabuff_refusal_falls_back_to_opendota_team_matches() {
    for status in [429u16, 403] {
        let fx = Fixtures::new();
        fx.opendota_team(
            TEAM,
            "Maple Syrup",
            &[(301, LEAGUE), (302, LEAGUE), (303, 16500)],
        );
        fx.match_with_players(301, &ten_players(30_000));
        fx.match_with_players(302, &ten_players(30_100));
        let t = spawn_app(fx).await;
        t.fault(
            &format!("/dotabuff/esports/teams/{TEAM}/matches"),
            status,
            None,
            None,
        )
        .await;
        let path = import_path(TEAM, LEAGUE);
        t.post(&path).await;
        let view = wait_complete(&t, &path).await;
        assert_eq!(view["source"], "opendota", "after {status}");
        assert_eq!(view["teamName"], "Maple Syrup");
        assert_eq!(view["matchIds"], serde_json::json!(["301", "302"]));
        assert!(
            view["fallbackReason"]
                .as_str()
                .unwrap()
                .contains(&status.to_string())
        );
        t.shutdown().await;
    }
}

#[actix_rt::test]
async fn malformed_dotabuff_pages_fall_back_without_panicking() {
    let garbage =
        "<html><body><p>Just a moment... checking your browser</p></body></html>".to_string();
    let broken = "<table class=\"recent-esports-matches\"><tbody><tr><td>".repeat(10);
    let huge = "<div>".to_string() + &"x".repeat(5 * 1024 * 1024) + "</div>";
    for page in [garbage, broken, huge] {
        let fx = Fixtures::new();
        fx.raw(
            &format!("dotabuff/esports/teams/{TEAM}/matches.html"),
            &page,
        );
        fx.opendota_team(TEAM, "Maple Syrup", &[(401, LEAGUE)]);
        fx.match_with_players(401, &[None; 10]);
        let t = spawn_app(fx).await;
        let path = import_path(TEAM, LEAGUE);
        t.post(&path).await;
        let view = wait_complete(&t, &path).await;
        assert_eq!(view["source"], "opendota");
        t.shutdown().await;
    }
}

#[actix_rt::test]
async fn opendota_only_mode_never_asks_dotabuff() {
    let fx = Fixtures::new();
    three_page_team(&fx);
    fx.opendota_team(TEAM, "Maple Syrup", &[(101, LEAGUE)]);
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.team_source = Some(dota_orchestrator::config::TeamSource::Opendota);
    })
    .await;
    let path = import_path(TEAM, LEAGUE);
    t.post(&path).await;
    let view = wait_complete(&t, &path).await;
    assert_eq!(view["source"], "opendota");
    let stats = t.upstream_stats().await;
    assert!(
        !stats["paths"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("/dotabuff"))
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn team_side_mode_fetches_only_the_teams_players() {
    let fx = Fixtures::new();
    fx.dotabuff_team(TEAM, "Maple Syrup", &[vec![row(501, LEAGUE)]]);
    fx.match_with_players(501, &ten_players(50_000)); // radiant_team_id is 9517508
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.team_players = dota_orchestrator::config::PlayerSides::Team;
    })
    .await;
    let path = import_path(TEAM, LEAGUE);
    t.post(&path).await;
    let view = wait_complete(&t, &path).await;
    assert_eq!(view["progress"]["playersTotal"], 5);
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    assert_eq!(stats["paths"]["/opendota/players/50000"]["requests"], 1);
    assert!(
        stats["paths"].get("/opendota/players/50007").is_none(),
        "opponents not fetched"
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn force_refetches_every_match_and_player_of_the_team_exactly_once() {
    let fx = Fixtures::new();
    let ours = three_page_team(&fx);
    let t = spawn_app(fx).await;
    let path = import_path(TEAM, LEAGUE);
    t.post(&path).await;
    wait_complete(&t, &path).await;
    // Let the first import finish every job, then force.
    t.wait_drained().await;
    let resp = t.post(&format!("{path}&force=true")).await;
    assert_eq!(resp.status(), 202);
    // GET with force answers with the data it has while the refresh runs.
    let during = t.get(&format!("{path}&force=true")).await;
    assert_eq!(during.status(), 200);
    let players: Vec<u64> = (0..5)
        .map(|p| 10_000 + p)
        .chain((0..4).flat_map(|i| (0..5).map(move |p| 20_000 + 10 * i + p)))
        .collect();
    wait_for(Duration::from_secs(60), || async {
        let stats = t.upstream_stats().await;
        let all_twice = ours
            .iter()
            .map(|m| format!("/opendota/matches/{m}"))
            .chain(players.iter().map(|p| format!("/opendota/players/{p}")))
            .all(|k| stats["paths"][&k]["requests"] == 2);
        all_twice.then_some(())
    })
    .await
    .expect("every match and player refetched");
    // And not a third time, once every job has run.
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    for p in &players {
        assert_eq!(
            stats["paths"][&format!("/opendota/players/{p}")]["requests"],
            2,
            "player {p}"
        );
    }
    // Pages were re-scraped by the force.
    assert_eq!(
        stats["paths"][&format!("/dotabuff/esports/teams/{TEAM}/matches")]["requests"],
        2
    );
    wait_complete(&t, &path).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn two_teams_sharing_players_fetch_each_shared_player_once() {
    let fx = Fixtures::new();
    fx.dotabuff_team(1001, "Alpha", &[vec![row(601, LEAGUE), row(602, LEAGUE)]]);
    fx.dotabuff_team(1002, "Beta", &[vec![row(603, LEAGUE)]]);
    let shared = [Some(60_000), Some(60_001)];
    for (id, base) in [(601u64, 61_000u64), (602, 62_000), (603, 63_000)] {
        let mut players: Vec<Option<u64>> = shared.to_vec();
        players.extend((0..8).map(|p| Some(base + p)));
        fx.match_with_players(id, &players);
    }
    let t = spawn_app(fx).await;
    t.post(&import_path(1001, LEAGUE)).await;
    t.post(&import_path(1002, LEAGUE)).await;
    wait_complete(&t, &import_path(1001, LEAGUE)).await;
    wait_complete(&t, &import_path(1002, LEAGUE)).await;
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    for p in [60_000, 60_001] {
        assert_eq!(
            stats["paths"][&format!("/opendota/players/{p}")]["requests"],
            1
        );
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn team_requests_validate_ids_and_the_league() {
    let t = spawn_app(Fixtures::new()).await;
    let resp = t.post("/api/teams/9517508/matches").await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Missing required parameters")
    );
    assert_eq!(
        t.post("/api/teams/abc/matches?leagueId=1").await.status(),
        400
    );
    assert_eq!(
        t.post("/api/teams/1/matches?leagueId=-4").await.status(),
        400
    );
    // The league may come as a JSON body.
    let resp = t
        .http
        .post(format!("{}/api/teams/9517508/matches", t.base))
        .json(&serde_json::json!({"leagueId": "16435"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["leagueId"], "16435");
    t.shutdown().await;
}

#[actix_rt::test]
async fn page_fetches_keep_to_the_dotabuff_spacing() {
    let fx = Fixtures::new();
    three_page_team(&fx);
    // 60/min: one page per second, so three pages cannot take less than two seconds.
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.limits.dotabuff_per_minute = 60;
    })
    .await;
    let started = std::time::Instant::now();
    let path = import_path(TEAM, LEAGUE);
    t.post(&path).await;
    wait_for(Duration::from_secs(60), || async {
        (t.get(&path).await.status() == 200).then_some(())
    })
    .await
    .expect("team record stored");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "3 pages at 60/min took only {:?}",
        started.elapsed()
    );
    t.wait_drained().await;
    let stats = t.upstream_stats().await;
    assert_eq!(
        stats["paths"][&format!("/dotabuff/esports/teams/{TEAM}/matches?page=3")]["requests"],
        1
    );
    t.shutdown().await;
}
