//! Team imports through the source chain (`--team-sources`): a Steam league history paged in
//! full and shared by the league's imports, resumed after a restart, the players it lists
//! queued at once (never an anonymous or missing account); Dotabuff's bot challenge and the
//! cooldown that follows; a refused Steam key, Steam busy, a private history; STRATZ pages and
//! its GraphQL errors; `/api/leagues/{id}` from the history.

use crate::common;

use std::time::Duration;

use common::sources::{ANONYMOUS, Slot, accounts, opendota_players, steam_row};
use common::{Fixtures, TestApp, WAIT, spawn_app_with, wait_for};
use dota_orchestrator::config::Settings;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

const TEAM: u64 = 9517508;
const OTHER_TEAM: u64 = 9517731;
const LEAGUE: u64 = 16435;
const HISTORY: &str = "/steam/IDOTA2Match_570/GetMatchHistory/v1/";
const TEAM_INFO: &str = "/steam/IDOTA2Match_570/GetTeamInfoByTeamID/v1/";

fn import_path(team: u64) -> String {
    format!("/api/teams/{team}/matches?leagueId={LEAGUE}")
}

/// The players of TEAM's four matches: one anonymous and one missing account in the first.
fn slots(match_id: u64) -> Vec<Slot> {
    let mut slots = accounts(10_000 + match_id % 3 * 5);
    if match_id == 1249 {
        slots[3] = Slot::Anonymous;
        slots[7] = Slot::Missing;
    }
    slots
}

/// A 250-match league (three Steam pages: 1250-1151, 1150-1051, 1050-1001). TEAM plays 1249,
/// 1150, 1100 and 1005 (OTHER_TEAM is its opponent in 1249 and 1005); the rest are other
/// teams' matches. OpenDota has the four match bodies but no match of TEAM's in its list.
fn amateur_league(fx: &Fixtures) -> Vec<u64> {
    let ours = [1249, 1150, 1100, 1005];
    let rows: Vec<Value> = (1001..=1250)
        .map(|id| match id {
            1249 | 1005 => steam_row(id, TEAM, OTHER_TEAM, &slots(id)),
            1150 | 1100 => steam_row(id, 42, TEAM, &slots(id)),
            _ => steam_row(id, 1, 2, &accounts(90_000)),
        })
        .collect();
    fx.steam_league(LEAGUE, &rows);
    fx.steam_team(TEAM, "Maple Syrup");
    fx.steam_team(OTHER_TEAM, "Night Owls");
    for id in ours {
        fx.match_with_players(id, &opendota_players(&slots(id)));
    }
    fx.opendota_team(TEAM, "Maple Syrup", &[]);
    fx.opendota_team(OTHER_TEAM, "Night Owls", &[]);
    ours.to_vec()
}

fn with_steam(chain: &'static str) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.sources.steam_api_key = Some("test-key".parse().unwrap());
        s.sources.team_sources = Some(chain.parse().unwrap());
    }
}

async fn calls_under(t: &TestApp, prefix: &str) -> u64 {
    let stats = t.upstream_stats().await;
    let paths = stats["paths"].as_object().cloned().unwrap_or_default();
    paths
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .map(|(_, v)| v["requests"].as_u64().unwrap_or(0))
        .sum()
}

fn tried(view: &Value) -> Vec<(String, String)> {
    view["sourcesTried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            (s("source"), s("outcome"))
        })
        .collect()
}

#[actix_rt::test]
async fn an_amateur_league_imports_through_steam_while_dotabuff_challenges_and_opendota_lists_nothing()
 {
    let fx = Fixtures::new();
    let ours = amateur_league(&fx);
    let t = spawn_app_with(
        fx,
        FixtureConfig::default(),
        with_steam("dotabuff,opendota,steam"),
    )
    .await;
    let dotabuff_page = format!("/dotabuff/esports/teams/{TEAM}/matches");
    t.fault_spec(&json!({"path": dotabuff_page, "kind": "challenge"}))
        .await;

    let path = import_path(TEAM);
    t.post(&path).await;
    let view = t.wait_import_complete(&path).await;
    assert_eq!(view["source"], "steam");
    assert_eq!(view["teamName"], "Maple Syrup");
    let ids: Vec<String> = ours.iter().map(u64::to_string).collect();
    assert_eq!(view["matchIds"], json!(ids));
    assert_eq!(view["pages"], 3);
    assert_eq!(
        tried(&view),
        [
            ("dotabuff".into(), "failed".into()),
            ("opendota".into(), "uncovered".into()),
            ("steam".into(), "answered".into())
        ]
    );
    let reason = view["sourcesTried"][0]["reason"].as_str().unwrap();
    assert_eq!(reason, "dotabuff: bot challenge (HTTP 403)");
    assert!(view["sourcesTried"][1]["reason"].is_string());
    // Every match and every public player is ready: 10 + 5 + 5 + 5 accounts, less the
    // anonymous and the missing one of match 1249 (accounts 10,000-10,014 in all, 2 not there).
    assert_eq!(view["progress"]["matchesReady"], 4);
    let players = view["progress"]["playersTotal"].as_u64().unwrap();
    assert_eq!(view["progress"]["playersReady"].as_u64().unwrap(), players);
    // Three pages, three calls; one team name call.
    assert_eq!(calls_under(&t, HISTORY).await, 3);
    assert_eq!(
        t.upstream_requests(HISTORY).await,
        0,
        "page 1 names the league"
    );
    assert_eq!(
        t.upstream_requests(&format!("{HISTORY}?league_id={LEAGUE}"))
            .await,
        1
    );
    for start in [1150, 1050] {
        let page = format!("{HISTORY}?league_id={LEAGUE}&start_at_match_id={start}");
        assert_eq!(t.upstream_requests(&page).await, 1, "{page}");
    }
    assert_eq!(calls_under(&t, TEAM_INFO).await, 1);
    // Never an anonymous account, and every player fetched once.
    assert_eq!(
        t.upstream_requests(&format!("/opendota/players/{ANONYMOUS}"))
            .await,
        0
    );
    for id in 10_000..10_015 {
        let asked = t
            .upstream_requests(&format!("/opendota/players/{id}"))
            .await;
        assert!(asked <= 1, "player {id} fetched {asked} times");
    }

    // A second team of the same league: no league history call.
    let path = import_path(OTHER_TEAM);
    t.post(&path).await;
    let view = t.wait_import_complete(&path).await;
    assert_eq!(view["source"], "steam");
    assert_eq!(view["matchIds"], json!(["1249", "1005"]));
    assert_eq!(calls_under(&t, HISTORY).await, 3);
    // Dotabuff is paused after its challenge: skipped without a call.
    assert_eq!(tried(&view)[0], ("dotabuff".into(), "skipped".into()));
    assert_eq!(
        calls_under(&t, &format!("/dotabuff/esports/teams/{OTHER_TEAM}")).await,
        0
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_restart_in_the_middle_of_paging_fetches_no_page_twice() {
    let fx = Fixtures::new();
    amateur_league(&fx);
    // The cut page's job is retried only after the restart, however long the stop takes on a
    // loaded machine: a retry that ran on the old instance first would ask for the page a
    // third time (as it should: an answer cut short is not a fetched page).
    let slow_retry = |s: &mut Settings| {
        with_steam("steam")(s);
        s.retry.base_delay = Duration::from_secs(20);
        s.retry.max_delay = Duration::from_secs(20);
    };
    let mut t = spawn_app_with(fx, FixtureConfig::default(), slow_retry).await;
    let third = format!("{HISTORY}?league_id={LEAGUE}&start_at_match_id=1050");
    t.fault_spec(&json!({"path": third, "kind": "hang", "ms": 1500, "count": 1}))
        .await;
    t.post(&import_path(TEAM)).await;
    wait_for(WAIT, || async {
        (t.upstream_requests(&third).await >= 1).then_some(())
    })
    .await
    .expect("page 3 asked for");
    t.restart_app(with_steam("steam")).await;
    let view = t.wait_import_complete(&import_path(TEAM)).await;
    assert_eq!(view["source"], "steam");
    assert_eq!(view["matchIds"].as_array().unwrap().len(), 4);
    let first = format!("{HISTORY}?league_id={LEAGUE}");
    let second = format!("{HISTORY}?league_id={LEAGUE}&start_at_match_id=1150");
    assert_eq!(t.upstream_requests(&first).await, 1);
    assert_eq!(t.upstream_requests(&second).await, 1);
    // The page whose answer never came, and only it, was asked again.
    assert_eq!(t.upstream_requests(&third).await, 2);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_refused_steam_key_moves_on_at_once_and_pauses_steam() {
    let fx = Fixtures::new();
    amateur_league(&fx);
    fx.opendota_team(TEAM, "Maple Syrup", &[(1249, LEAGUE)]);
    fx.opendota_team(OTHER_TEAM, "Night Owls", &[(1249, LEAGUE)]);
    let t = spawn_app_with(fx, FixtureConfig::default(), with_steam("steam,opendota")).await;
    let first = format!("{HISTORY}?league_id={LEAGUE}");
    t.fault_spec(&json!({"path": first, "kind": "steam_forbidden"}))
        .await;
    let path = import_path(TEAM);
    t.post(&path).await;
    let view = t.wait_import_complete(&path).await;
    assert_eq!(view["source"], "opendota");
    assert_eq!(view["sourcesTried"][0]["outcome"], "failed");
    assert_eq!(
        view["sourcesTried"][0]["reason"],
        "steam: the API key was refused (HTTP 403)"
    );
    assert_eq!(t.upstream_requests(&first).await, 1, "no retry storm");
    let path = import_path(OTHER_TEAM);
    t.post(&path).await;
    let view = t.wait_import_complete(&path).await;
    assert_eq!(tried(&view)[0], ("steam".into(), "skipped".into()));
    assert_eq!(t.upstream_requests(&first).await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn steam_busy_is_retried_with_backoff_and_the_import_goes_through_steam() {
    let fx = Fixtures::new();
    amateur_league(&fx);
    let t = spawn_app_with(fx, FixtureConfig::default(), with_steam("steam,opendota")).await;
    let first = format!("{HISTORY}?league_id={LEAGUE}");
    t.fault_spec(&json!({"path": first, "kind": "steam_busy", "count": 1}))
        .await;
    t.fault(&first, 429, Some(1), None).await;
    let path = import_path(TEAM);
    t.post(&path).await;
    // The 429 pauses Steam's budget to the next minute: the shared clock is moved to just
    // before it instead of waiting it out.
    let view = wait_for(Duration::from_secs(60), || async {
        if let Some(view) = common::import_complete(t.get(&path).await).await {
            return Some(view);
        }
        t.hurry_service_to_next_window("steam").await;
        None
    })
    .await
    .expect("import completes");
    assert_eq!(view["source"], "steam");
    assert_eq!(t.upstream_requests(&first).await, 3);
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_private_history_is_a_final_answer_and_a_team_in_no_source_gets_an_empty_import() {
    let fx = Fixtures::new();
    fx.raw(
        &format!("steam/leagues/{LEAGUE}.json"),
        json!({"result": {"status": 15, "statusDetail": "Cannot get match history for a user that hasn't allowed it."}}).to_string(),
    );
    fx.opendota_team(TEAM, "Maple Syrup", &[(77, 1)]);
    let t = spawn_app_with(
        fx,
        FixtureConfig::default(),
        with_steam("steam,dotabuff,opendota"),
    )
    .await;
    let path = import_path(TEAM);
    t.post(&path).await;
    let view = t.wait_status(&path, 200).await;
    assert_eq!(view["matchIds"], json!([]));
    assert_eq!(
        tried(&view),
        [
            ("steam".into(), "failed".into()),
            ("dotabuff".into(), "failed".into()),
            ("opendota".into(), "uncovered".into())
        ]
    );
    let reason = view["sourcesTried"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("private"), "{reason}");
    assert_eq!(calls_under(&t, HISTORY).await, 1);
    t.shutdown().await;
}

#[actix_rt::test]
async fn stratz_fills_the_same_history_and_its_graphql_errors_are_garbled_answers() {
    let fx = Fixtures::new();
    let rows: Vec<(u64, u64, u64)> = (1..=130)
        .map(|i| {
            let id = 8_018_000_000 + i;
            if i % 40 == 0 {
                (id, TEAM, 7)
            } else {
                (id, 5, 6)
            }
        })
        .collect();
    fx.stratz_league(LEAGUE, &rows);
    for (id, radiant, _) in &rows {
        if *radiant == TEAM {
            let players: Vec<Option<u64>> =
                (0..10).map(|i| Some(50_000 + id % 100 * 10 + i)).collect();
            fx.match_with_players(*id, &players);
        }
    }
    fx.opendota_team(OTHER_TEAM, "Night Owls", &[(77, LEAGUE)]);
    fx.match_with_players(77, &[Some(1), Some(2)]);
    let tweak = |s: &mut Settings| {
        s.sources.stratz_token = Some("token".parse().unwrap());
        s.sources.team_sources = Some("stratz,opendota".parse().unwrap());
    };
    let t = spawn_app_with(fx, FixtureConfig::default(), tweak).await;
    let path = import_path(TEAM);
    t.post(&path).await;
    let view = t.wait_import_complete(&path).await;
    assert_eq!(view["source"], "stratz");
    assert_eq!(view["teamName"], format!("Team {TEAM}"));
    assert_eq!(view["matchIds"].as_array().unwrap().len(), 3);
    assert_eq!(view["pages"], 2);
    assert_eq!(calls_under(&t, "/stratz/graphql").await, 2);

    // GraphQL errors (HTTP 200) for another league: garbled, and the chain moves on.
    let other = format!("/api/teams/{OTHER_TEAM}/matches?leagueId={LEAGUE}");
    let errors = r#"{"errors":[{"message":"Too many requests"}],"data":null}"#;
    t.fault("/stratz/graphql", 200, Some(1), Some(errors)).await;
    t.post(&format!("{other}&force=true")).await;
    let view = t.wait_import_complete(&other).await;
    assert_eq!(view["source"], "opendota");
    let reason = view["sourcesTried"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("garbled") && reason.contains("Too many requests"),
        "{reason}"
    );
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_league_takes_its_match_ids_from_the_steam_history() {
    let fx = Fixtures::new();
    amateur_league(&fx);
    fx.league(LEAGUE, "RD2L Season 33", &[1, 2]);
    let t = spawn_app_with(fx, FixtureConfig::default(), with_steam("steam")).await;
    t.post(&format!("/api/leagues/{LEAGUE}")).await;
    let league = t.get_when_ready(&format!("/api/leagues/{LEAGUE}")).await;
    assert_eq!(league["name"], "RD2L Season 33");
    let ids = league["matchIds"].as_array().unwrap();
    assert_eq!(ids.len(), 250);
    assert_eq!(ids[0], "1250");
    let _ = Duration::ZERO;
    t.shutdown().await;
}

#[actix_rt::test]
async fn the_demo_imports_a_team_through_steam() {
    let demo = common::spawn_demo_app().await;
    let path = "/api/teams/9517508/matches?leagueId=16435";
    demo.post(path).await;
    let url = format!("{}{}", demo.base, path);
    let http = demo.http.clone();
    let view = wait_for(Duration::from_secs(60), || {
        let (http, url) = (http.clone(), url.clone());
        async move { common::import_complete(http.get(&url).send().await.ok()?).await }
    })
    .await
    .expect("demo import completes");
    assert_eq!(view["source"], "steam");
    assert_eq!(view["teamName"], "Maple Syrup");
    assert_eq!(view["matchIds"].as_array().unwrap().len(), 9);
    // The status shows Steam's budget windows, and STRATZ's four.
    let status: Value = http
        .get(format!("{}/api/queue/status", demo.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let windows = |service: &str| -> Vec<(String, u64)> {
        status["services"][service]["budget"]["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["window"].as_str().unwrap().to_string(),
                    w["limit"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        windows("steam"),
        [("minute".to_string(), 60), ("day".to_string(), 100_000)]
    );
    let stratz: Vec<u64> = windows("stratz").into_iter().map(|(_, l)| l).collect();
    assert_eq!(stratz, [20, 250, 2000, 10_000]);
    demo.shutdown().await;
}

/// Copies every file below `from` into `fx` (a recorded session becomes a replay's data).
fn copy_into(fx: &Fixtures, from: &std::path::Path, rel: &str) {
    for entry in std::fs::read_dir(from.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            copy_into(fx, from, &name);
        } else {
            fx.raw(&name, std::fs::read(entry.path()).unwrap());
        }
    }
}

#[actix_rt::test]
async fn steam_and_stratz_answers_are_recorded_without_their_secrets_and_replay() {
    const STRATZ_LEAGUE: u64 = 16500;
    let fx = Fixtures::new();
    amateur_league(&fx);
    let stratz_rows: Vec<(u64, u64, u64)> =
        vec![(8_018_000_101, OTHER_TEAM, 7), (8_018_000_102, 5, 6)];
    fx.stratz_league(STRATZ_LEAGUE, &stratz_rows);
    let players: Vec<Option<u64>> = (0..10).map(|i| Some(50_010 + i)).collect();
    fx.match_with_players(8_018_000_101, &players);
    let recorded = tempfile::tempdir().unwrap();
    let dir = recorded.path().to_path_buf();
    let tweak = move |s: &mut Settings| {
        s.record_dir = Some(dir);
        s.sources.steam_api_key = Some("steam-secret-key-123".parse().unwrap());
        s.sources.stratz_token = Some("stratz-secret-token-456".parse().unwrap());
        s.sources.team_sources = Some("steam,stratz".parse().unwrap());
    };
    let t = spawn_app_with(fx, FixtureConfig::default(), tweak).await;
    let steam_path = import_path(TEAM);
    let stratz_path = format!("/api/teams/{OTHER_TEAM}/matches?leagueId={STRATZ_LEAGUE}");
    t.post(&steam_path).await;
    let steam_view = t.wait_import_complete(&steam_path).await;
    t.post(&stratz_path).await;
    let stratz_view = t.wait_import_complete(&stratz_path).await;
    assert_eq!(stratz_view["source"], "stratz");
    t.shutdown().await;

    let root = recorded.path();
    for file in [
        format!("steam/leagues/{LEAGUE}.json"),
        format!("steam/teams/{TEAM}.json"),
        format!("stratz/leagues/{STRATZ_LEAGUE}.json"),
    ] {
        assert!(root.join(&file).is_file(), "{file} recorded");
    }
    let mut all = String::new();
    for sub in ["steam", "stratz"] {
        let replay = Fixtures::new();
        copy_into(&replay, root, sub);
        for entry in walk(&replay.dir().join(sub)) {
            all.push_str(&std::fs::read_to_string(entry).unwrap());
        }
    }
    assert!(!all.contains("steam-secret-key-123") && !all.contains("stratz-secret-token-456"));

    // Replay: the recorded directory alone answers the same imports.
    let replay = Fixtures::new();
    for sub in ["opendota", "steam", "stratz"] {
        copy_into(&replay, root, sub);
    }
    let tweak = |s: &mut Settings| {
        s.sources.steam_api_key = Some("another-key".parse().unwrap());
        s.sources.stratz_token = Some("another-token".parse().unwrap());
        s.sources.team_sources = Some("steam,stratz".parse().unwrap());
    };
    let t = spawn_app_with(replay, FixtureConfig::default(), tweak).await;
    t.post(&steam_path).await;
    let view = t.wait_import_complete(&steam_path).await;
    assert_eq!(view["matchIds"], steam_view["matchIds"]);
    assert_eq!(view["teamName"], "Maple Syrup");
    assert_eq!(calls_under(&t, HISTORY).await, 3);
    t.post(&stratz_path).await;
    let view = t.wait_import_complete(&stratz_path).await;
    assert_eq!(view["matchIds"], stratz_view["matchIds"]);
    t.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
