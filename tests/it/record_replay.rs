//! `serve --record-dir`: a team import recorded from one fixture upstream replays through a
//! second fixture upstream serving the recorded directory, to the same API answers; error
//! answers and bodies that fail validation are not recorded; the API key is never written;
//! a record dir that cannot be written stops start-up.

use crate::common;

use std::path::{Path, PathBuf};

use common::fixtures::row;
use common::{Fixtures, spawn_app_with};
use dota_orchestrator::app::{Application, Hooks};
use dota_orchestrator::config::ApiKey;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

const TEAM: u64 = 9517508;
const LEAGUE: u64 = 16435;
const API_KEY: &str = "recorded-session-key-7f3a9c";

/// Three Dotabuff pages (page 2 mixes in another league) and every match of the league with
/// its players; players overlap between matches, and one is anonymous.
fn three_page_team(fx: &Fixtures) -> Vec<u64> {
    fx.dotabuff_team(
        TEAM,
        "Maple Syrup",
        &[
            vec![row(101, LEAGUE), row(102, LEAGUE)],
            vec![row(103, LEAGUE), row(901, 16500)],
            vec![row(104, LEAGUE)],
        ],
    );
    let ours = vec![101, 102, 103, 104];
    for (i, id) in ours.iter().enumerate() {
        let mut players: Vec<Option<u64>> = (0..5).map(|p| Some(10_000 + p)).collect();
        players.extend((0..4).map(|p| Some(20_000 + 10 * i as u64 + p)));
        players.push(None);
        fx.match_with_players(*id, &players);
    }
    ours
}

fn import_path() -> String {
    format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}")
}

/// Settings tweak: record into `dir`, with an API key that must never be written.
fn recording_into(dir: &Path) -> impl FnOnce(&mut dota_orchestrator::config::Settings) {
    let dir = dir.to_path_buf();
    move |s| {
        s.record_dir = Some(dir);
        s.opendota_api_key = ApiKey::new(API_KEY.into());
    }
}

/// Waits until the import's matches and players are all ready; returns the view.
async fn wait_complete(t: &common::TestApp) -> Value {
    t.wait_import_complete(&import_path()).await
}

/// What a dashboard reads after the import: the team view and every match and player body.
async fn api_answers(t: &common::TestApp) -> (Value, Vec<(String, String)>) {
    t.post(&import_path()).await;
    let view = wait_complete(t).await;
    let mut bodies = Vec::new();
    let ids = |key: &str| -> Vec<String> {
        view[key]
            .as_array()
            .expect("id list")
            .iter()
            .map(|v| v.as_str().expect("string id").to_string())
            .collect()
    };
    let players: Vec<String> = view["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|p| match &p["accountId"] {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        })
        .collect();
    let paths = ids("matchIds")
        .into_iter()
        .map(|id| format!("/api/matches/{id}"))
        .chain(
            players
                .into_iter()
                .map(|id| format!("/api/players/{id}/data")),
        );
    for path in paths {
        let resp = t.get(&path).await;
        assert_eq!(resp.status(), 200, "{path}");
        bodies.push((path, resp.text().await.expect("body")));
    }
    (view, bodies)
}

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("below dir").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[actix_rt::test]
async fn a_recorded_team_import_replays_to_identical_api_answers() {
    let fx = Fixtures::new();
    let ours = three_page_team(&fx);
    // The recording goes into a fresh dir that is then served as a fixture data set.
    let recorded = Fixtures::new();
    let t = spawn_app_with(fx, FixtureConfig::default(), recording_into(recorded.dir())).await;
    let (view, bodies) = api_answers(&t).await;
    assert_eq!(view["source"], "dotabuff");
    assert_eq!(view["pages"], 3);
    assert_eq!(view["matches"].as_array().unwrap().len(), ours.len());
    assert_eq!(bodies.len(), 4 + 5 + 4 * 4, "every match and public player");
    t.shutdown().await;

    // Exactly the answers the import used, in the fixture layout; no temp file left over,
    // and the API key neither in a name nor in a body.
    let files = files_below(recorded.dir());
    let mut expected: Vec<PathBuf> = ["", ".page-2", ".page-3"]
        .iter()
        .map(|page| format!("dotabuff/esports/teams/{TEAM}/matches{page}.html"))
        .chain(ours.iter().map(|id| format!("opendota/matches/{id}.json")))
        .chain(
            bodies
                .iter()
                .filter_map(|(path, _)| path.strip_prefix("/api/players/"))
                .map(|id| format!("opendota/players/{}.json", id.trim_end_matches("/data"))),
        )
        .map(PathBuf::from)
        .collect();
    expected.sort();
    assert_eq!(files, expected);
    for file in &files {
        assert!(!file.to_string_lossy().contains(API_KEY), "{file:?}");
        let content = std::fs::read(recorded.dir().join(file)).expect("recorded file");
        assert!(
            !String::from_utf8_lossy(&content).contains(API_KEY),
            "{file:?} holds the API key"
        );
    }

    // A second fixture upstream on the recording, and a fresh service against it.
    let replay = spawn_app_with(recorded, FixtureConfig::default(), |_| {}).await;
    let (replayed_view, replayed_bodies) = api_answers(&replay).await;
    assert_eq!(replayed_view, view);
    assert_eq!(replayed_bodies, bodies);
    // It really was served from the recording: every page was asked for once.
    let stats = replay.upstream_stats().await;
    for page in ["", "?page=2", "?page=3"] {
        let key = format!("/dotabuff/esports/teams/{TEAM}/matches{page}");
        assert_eq!(stats["paths"][&key]["requests"], 1, "{key}");
    }
    replay.shutdown().await;
}

#[actix_rt::test]
async fn error_answers_and_bodies_that_fail_validation_are_not_recorded() {
    let fx = Fixtures::new();
    for id in [600, 601, 603, 604] {
        fx.match_with_players(id, &[None; 10]);
    }
    // Dotabuff sends a bot check; the import falls back to OpenDota, which is recorded.
    fx.dotabuff_team(TEAM, "Maple Syrup", &[vec![row(605, LEAGUE)]]);
    fx.opendota_team(TEAM, "Maple Syrup", &[(605, LEAGUE)]);
    fx.match_with_players(605, &[None; 10]);
    let recorded = tempfile::tempdir().expect("record dir");
    let record = recording_into(recorded.path());
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        record(s);
        s.retry.max_attempts = 2;
    })
    .await;
    t.fault("/opendota/matches/601", 500, None, None).await;
    let wrong_match = json!({"match_id": 1, "players": []}).to_string();
    t.fault("/opendota/matches/603", 200, None, Some(&wrong_match))
        .await;
    t.fault_spec(&json!({"path": "/opendota/matches/604", "kind": "truncate"}))
        .await;
    t.fault_spec(
        &json!({"path": format!("/dotabuff/esports/teams/{TEAM}/matches"), "kind": "html"}),
    )
    .await;

    // 602 has no file: the upstream answers 404.
    for id in [600, 601, 602, 603, 604] {
        assert_eq!(t.post(&format!("/api/matches/{id}")).await.status(), 202);
    }
    t.post(&import_path()).await;
    t.get_when_ready("/api/matches/600").await;
    t.wait_status("/api/matches/601", 502).await;
    t.wait_status("/api/matches/602", 404).await;
    t.wait_status("/api/matches/603", 502).await;
    t.wait_status("/api/matches/604", 502).await;
    let view = wait_complete(&t).await;
    assert_eq!(view["source"], "opendota", "{view}");
    t.wait_drained().await;
    t.shutdown().await;

    let files = files_below(recorded.path());
    let mut expected: Vec<PathBuf> = [
        "opendota/matches/600.json",
        "opendota/matches/605.json",
        format!("opendota/teams/{TEAM}.json").as_str(),
        format!("opendota/teams/{TEAM}/matches.json").as_str(),
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[actix_rt::test]
async fn a_record_dir_that_cannot_be_written_stops_start_up_naming_it() {
    common::init_tracing();
    let upstream = common::start_upstream(&Fixtures::new(), FixtureConfig::default()).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let a_file = scratch.path().join("a-file");
    std::fs::write(&a_file, "in the way").expect("write file");
    // The dir is a file; a service subdirectory is a file.
    let blocked = scratch.path().join("blocked");
    std::fs::create_dir_all(&blocked).expect("mkdir");
    std::fs::write(blocked.join("opendota"), "in the way").expect("write file");
    for (dir, named) in [
        (a_file.clone(), a_file),
        (blocked.clone(), blocked.join("opendota")),
    ] {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut settings = common::test_settings(data_dir.path(), &upstream);
        settings.record_dir = Some(dir.clone());
        let err = match Application::build(settings, Hooks::default()).await {
            Ok(app) => {
                app.stop().await;
                panic!("started with --record-dir {}", dir.display());
            }
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains("--record-dir") && err.contains(&named.display().to_string()),
            "{err}"
        );
    }
    upstream.stop().await;
}
