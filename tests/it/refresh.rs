//! Scheduled refresh of tracked team imports (`--auto-refresh`): a requested import is tracked
//! (in redb, across restarts), refreshed before its record expires with only its new matches
//! and their players fetched, announced again, listed by `/api/refresh/schedule`, and no
//! longer tracked after `DELETE ...&track=false`. Scheduled work waits while OpenDota's day
//! budget is at or below the reserve, and a person's request for the same import takes it over. A 4 s team TTL stands in for the 2 hours (the scheduler
//! measures against the store's clock, like freshness does), so nothing waits for hours.

use crate::common;

use std::time::Duration;

use common::fixtures::{row, ten_players};
use common::{Fixtures, TestApp, WAIT, spawn_app_with, wait_for};
use dota_orchestrator::config::{AdminToken, Settings};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use futures::StreamExt;
use serde_json::Value;

const LEAGUE: u64 = 16435;
const TEAM_TTL: Duration = Duration::from_secs(4);
const TOKEN: &str = "s3cret";

fn import_path(team: u64) -> String {
    format!("/api/teams/{team}/matches?leagueId={LEAGUE}")
}

fn auto_refresh(s: &mut Settings) {
    s.auto_refresh = true;
    s.ttls.teams = TEAM_TTL;
}

fn players_of(match_base: u64) -> Vec<u64> {
    ten_players(match_base).into_iter().flatten().collect()
}

async fn schedule(t: &TestApp) -> Value {
    let resp = t.get("/api/refresh/schedule").await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The schedule entry of `team`, if tracked.
async fn tracked(t: &TestApp, team: u64) -> Option<Value> {
    let body = schedule(t).await;
    body["tracked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["teamId"].as_str() == Some(team.to_string().as_str()))
        .cloned()
}

/// DELETE with the admin token of the restarted app.
async fn delete(t: &TestApp, path: &str) -> reqwest::Response {
    t.http
        .delete(format!("{}{path}", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

fn at(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
}

/// Every path was asked for exactly once.
async fn fetched_once(t: &TestApp, paths: &[String]) {
    for path in paths {
        assert_eq!(t.upstream_requests(path).await, 1, "{path}");
    }
}

fn match_and_players(id: u64, players: u64) -> Vec<String> {
    std::iter::once(format!("/opendota/matches/{id}"))
        .chain(
            players_of(players)
                .into_iter()
                .map(|p| format!("/opendota/players/{p}")),
        )
        .collect()
}

#[actix_rt::test]
async fn a_tracked_import_is_refreshed_with_only_its_new_matches_and_announced_again() {
    const TEAM: u64 = 9_517_601;
    let fx = Fixtures::new();
    fx.dotabuff_team(
        TEAM,
        "Refreshers",
        &[vec![row(701, LEAGUE), row(702, LEAGUE)]],
    );
    fx.match_with_players(701, &ten_players(70_000));
    fx.match_with_players(702, &ten_players(70_100));
    let mut t = spawn_app_with(fx, FixtureConfig::default(), auto_refresh).await;
    let client = async_nats::connect(t.app().nats_url()).await.unwrap();
    let mut announced = client
        .subscribe(format!("dota.ready.team.{TEAM}.{LEAGUE}"))
        .await
        .unwrap();
    client.flush().await.unwrap();

    assert_eq!(t.post(&import_path(TEAM)).await.status(), 202);
    tokio::time::timeout(WAIT, announced.next())
        .await
        .expect("the first import is announced")
        .unwrap();
    let mut announcements = 1;
    let first = tracked(&t, TEAM)
        .await
        .expect("a requested import is tracked");
    assert_eq!(first["leagueId"], LEAGUE.to_string());
    assert_eq!(first["signature"], format!("team:{TEAM}:{LEAGUE}"));
    let first_next = at(&first["nextRefreshAt"]);
    let old: Vec<String> = [
        match_and_players(701, 70_000),
        match_and_players(702, 70_100),
    ]
    .concat();
    fetched_once(&t, &old).await;

    // Tonight's match appears on the team's first page.
    t.fixtures.dotabuff_team(
        TEAM,
        "Refreshers",
        &[vec![row(703, LEAGUE), row(701, LEAGUE), row(702, LEAGUE)]],
    );
    t.fixtures.match_with_players(703, &ten_players(70_200));
    let new = match_and_players(703, 70_200);
    wait_for(WAIT, || async {
        for path in &new {
            if t.upstream_requests(path).await == 0 {
                return None;
            }
        }
        Some(())
    })
    .await
    .expect("the refresh fetches the new match and its players");
    // The next announcement is of a record that lists the new match, complete.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), announced.next()).await {
        announcements += 1;
    }
    tokio::time::timeout(WAIT, announced.next())
        .await
        .expect("the refreshed import is announced again")
        .unwrap();
    announcements += 1;
    let view: Value = t.get(&import_path(TEAM)).await.json().await.unwrap();
    let ids: Vec<&str> = view["matchIds"]
        .as_array()
        .expect("the stored import")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(ids.contains(&"703"), "{view}");
    // Every import announced read the page from Dotabuff, none from the page cache (which
    // is still fresh when a refresh is due).
    let pages_read = t
        .upstream_requests(&format!("/dotabuff/esports/teams/{TEAM}/matches"))
        .await;
    assert!(
        pages_read >= announcements,
        "{pages_read} < {announcements}"
    );
    // The new match went as scheduled work, below bulk (the counter's lines exist from the
    // start, at 0).
    let metrics = t.get("/metrics").await.text().await.unwrap();
    let scheduled_matches: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("dota_jobs_queued_total{kind=\"match\",priority=\"scheduled\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(scheduled_matches >= 1.0, "{metrics}");
    // New ones once, old ones never again.
    fetched_once(&t, &[old, new].concat()).await;
    let later = tracked(&t, TEAM).await.expect("still tracked");
    assert!(at(&later["nextRefreshAt"]) > first_next, "{later}");
    assert_eq!(schedule(&t).await["autoRefresh"], true);

    // Tracking is in redb: it survives a restart.
    t.restart_app(|s| {
        auto_refresh(s);
        s.admin_token = AdminToken::new(TOKEN.into());
    })
    .await;
    let after = tracked(&t, TEAM).await.expect("tracked after a restart");
    assert_eq!(after["lastRequestedAt"], later["lastRequestedAt"]);

    let path = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}&track=false");
    assert_eq!(delete(&t, &import_path(TEAM)).await.status(), 400);
    assert_eq!(
        delete(
            &t,
            &format!("/api/teams/x/matches?leagueId={LEAGUE}&track=false")
        )
        .await
        .status(),
        400
    );
    let anonymous = t.http.delete(format!("{}{path}", t.base)).send().await;
    assert_eq!(anonymous.unwrap().status(), 401);
    assert_eq!(delete(&t, &path).await.status(), 204);
    assert!(tracked(&t, TEAM).await.is_none());
    let again = delete(&t, &path).await;
    assert_eq!(again.status(), 404);
    let body: Value = again.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not tracked"));
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_refresh_waits_while_the_day_budget_is_at_the_reserve_but_a_person_does_not() {
    const TEAM: u64 = 9_517_602;
    let fx = Fixtures::new();
    fx.dotabuff_team(TEAM, "Savers", &[vec![row(711, LEAGUE)]]);
    fx.match_with_players(711, &ten_players(71_000));
    // The import spends 11 of 20 calls: 9 left, not above a reserve of 50% (10).
    let tight = |s: &mut Settings| {
        auto_refresh(s);
        s.limits.opendota_per_day = 20;
        s.refresh_reserve = 50;
    };
    let t = spawn_app_with(fx, FixtureConfig::default(), tight).await;
    assert_eq!(t.post(&import_path(TEAM)).await.status(), 202);
    let old = match_and_players(711, 71_000);
    wait_for(WAIT, || async {
        for path in &old {
            if t.upstream_requests(path).await == 0 {
                return None;
            }
        }
        let entry = tracked(&t, TEAM).await?;
        entry["nextRefreshAt"].is_string().then_some(())
    })
    .await
    .expect("the import is done");
    t.fixtures
        .dotabuff_team(TEAM, "Savers", &[vec![row(712, LEAGUE), row(711, LEAGUE)]]);
    t.fixtures.match_with_players(712, &ten_players(71_100));
    let page = format!("/dotabuff/esports/teams/{TEAM}/matches");
    let pages_read = t.upstream_requests(&page).await;

    // The refresh is queued as scheduled work and stays queued.
    wait_for(WAIT, || async {
        let status = t.queue_status_now().await;
        let queued = status["services"]["dotabuff"]["queuedByPriority"]["scheduled"].as_u64()?;
        (queued == 1).then_some(())
    })
    .await
    .expect("the refresh waits in the scheduled queue");
    let status = t.queue_status_now().await;
    assert_eq!(
        status["services"]["opendota"]["budget"]["day"]["remaining"],
        9
    );
    assert_eq!(t.upstream_requests(&page).await, pages_read);
    assert_eq!(t.upstream_requests("/opendota/matches/712").await, 0);

    // A person's request is not held behind it: it takes the claim over, at once.
    wait_for(WAIT, || async {
        let resp = t.get(&import_path(TEAM)).await;
        let cache = resp.headers().get("x-cache-status")?.to_str().ok()?;
        cache.starts_with("stale").then_some(())
    })
    .await
    .expect("the record expires while its refresh waits");
    wait_for(WAIT, || async {
        (t.upstream_requests("/opendota/matches/712").await == 1).then_some(())
    })
    .await
    .expect("the person's import runs, not waiting for the reserve");
    t.shutdown().await;
}
