//! The day's budget, visibly: a team import that needs more OpenDota calls than remain in the
//! UTC day pauses at the day boundary, says so (`waitingForBudget` in its progress, the spent
//! `budget.day` in `/api/queue/status`), and resumes by itself once the next UTC day begins,
//! with every resource fetched once and no upstream 429. The service and the fixture share a
//! clock set just before a UTC midnight; the test moves it past midnight once the import has
//! paused, so the day boundary is crossed for real in a few seconds.

use crate::chromium;
use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::fixtures::row;
use common::{Fixtures, WAIT, spawn_app_with, wait_for};
use dota_orchestrator::clock::Clock;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::Value;

const TEAM: u64 = 8_100_001;
const LEAGUE: u64 = 17_001;
/// OpenDota calls a UTC day, on the fixture and on the service alike.
const DAILY_LIMIT: u32 = 10;
/// How far before midnight the shared clock starts: ample for the first day's ten calls, and
/// longer than [`WAIT`], so only the test's move of the clock can end the pause in time.
const BEFORE_MIDNIGHT: Duration = Duration::from_secs(300);

/// Two league matches of ten players, five shared: 2 + 15 = 17 OpenDota calls, more than a
/// day's 10. The team's page is Dotabuff's, which has no day budget.
fn team_of_two_matches() -> Fixtures {
    let fx = Fixtures::new();
    fx.dotabuff_team(
        TEAM,
        "Night Owls",
        &[vec![row(301, LEAGUE), row(302, LEAGUE)]],
    );
    for (i, id) in [301u64, 302].into_iter().enumerate() {
        let mut players: Vec<Option<u64>> = (0..5).map(|p| Some(40_000 + p)).collect();
        players.extend((0..5).map(|p| Some(50_000 + 10 * i as u64 + p)));
        fx.match_with_players(id, &players);
    }
    fx
}

/// The next UTC midnight after the system time, and a clock standing [`BEFORE_MIDNIGHT`]
/// before it (and running on from there).
fn clock_before_midnight() -> (Clock, SystemTime) {
    let clock = Clock::system();
    let secs = clock
        .now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let midnight = UNIX_EPOCH + Duration::from_secs((secs / 86_400 + 1) * 86_400);
    clock.set(midnight - BEFORE_MIDNIGHT);
    (clock, midnight)
}

fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Upstream requests to `/opendota` so far, and how many were answered 429.
async fn opendota_calls(t: &common::TestApp) -> (u64, u64) {
    let stats = t.upstream_stats().await;
    let paths = stats["paths"].as_object().expect("paths");
    let opendota = paths.iter().filter(|(p, _)| p.starts_with("/opendota/"));
    let requests = opendota
        .clone()
        .map(|(_, s)| s["requests"].as_u64().unwrap_or(0));
    (requests.sum(), stats["rateLimited"].as_u64().unwrap_or(0))
}

/// The status page (in headless Chromium, when there is one) says the day's budget is spent
/// and that the import started from its form waits for it.
async fn status_page_shows_the_pause(t: &common::TestApp, resets_at: &str) {
    let Some(binary) = chromium::find_or_skip("day_budget status page") else {
        return;
    };
    let mut browser = chromium::Chromium::launch(&binary).await;
    browser.navigate(&format!("{}/", t.base)).await;
    browser
        .eval(&format!(
            "(() => {{ document.getElementById('import-team').value = '{TEAM}'; \
              document.getElementById('import-league').value = '{LEAGUE}'; \
              document.getElementById('import-start').click(); }})()"
        ))
        .await;
    // `2026-12-01T00:00:00Z` reads `2026-12-01 00:00 UTC` on the page.
    let when = format!("{} UTC", resets_at[..16].replace('T', " "));
    // Polled by hand: `wait_for` takes a closure, which cannot lend out the browser.
    let deadline = tokio::time::Instant::now() + WAIT;
    let shown = loop {
        let texts = browser
            .eval(
                "[document.getElementById('opendota-budget-day').textContent, \
                  document.getElementById('progress-text').textContent]",
            )
            .await;
        let (day, progress) = (texts[0].as_str(), texts[1].as_str());
        if let (Some(day), Some(progress)) = (day, progress)
            && day.contains("spent")
            && progress.contains("waiting")
        {
            break Some((day.to_string(), progress.to_string()));
        }
        if tokio::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.close().await;
    let (day, progress) = shown.expect("the status page shows the spent day and the paused import");
    assert_eq!(day, format!("0 / {DAILY_LIMIT} · spent, resets {when}"));
    assert!(
        progress.ends_with(&format!(
            "waiting for the next day's budget, resumes {when}"
        )),
        "{progress}"
    );
}

#[actix_rt::test]
async fn an_import_beyond_the_days_budget_pauses_at_midnight_and_resumes_by_itself() {
    let (clock, midnight) = clock_before_midnight();
    let upstream = FixtureConfig {
        daily_limit: Some(DAILY_LIMIT),
        clock,
        ..Default::default()
    };
    let t = spawn_app_with(team_of_two_matches(), upstream, |s| {
        s.limits.opendota_per_day = DAILY_LIMIT;
    })
    .await;
    let path = format!("/api/teams/{TEAM}/matches?leagueId={LEAGUE}");
    assert_eq!(t.post(&path).await.status(), 202);

    // The day's ten calls go out and their resources are stored; then the import pauses and
    // says until when.
    let resets_at = rfc3339(midnight);
    let paused = wait_for(WAIT, || async {
        let r = t.get(&path).await;
        if r.status() != 200 {
            return None;
        }
        let view: Value = r.json().await.ok()?;
        let p = &view["progress"];
        let ready = p["matchesReady"].as_u64()? + p["playersReady"].as_u64()?;
        (p["waitingForBudget"] == true && ready == u64::from(DAILY_LIMIT)).then_some(view)
    })
    .await
    .expect("the import stores a day's worth of resources, then pauses for the next day");
    let progress = &paused["progress"];
    assert_eq!(progress["resumesAt"], resets_at.as_str(), "{progress}");
    assert_eq!(progress["matchesTotal"], 2, "{progress}");

    let only_progress: Value = t
        .get(&format!("{path}&include=progress"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        only_progress["progress"]["waitingForBudget"], true,
        "{only_progress}"
    );
    assert_eq!(only_progress["progress"]["resumesAt"], resets_at.as_str());

    let status = t.queue_status_now().await;
    let day = &status["services"]["opendota"]["budget"]["day"];
    assert_eq!(day["limit"], DAILY_LIMIT, "{status}");
    assert_eq!(day["remaining"], 0, "{status}");
    assert_eq!(day["resetsAt"], resets_at.as_str(), "{status}");
    assert!(
        status["services"]["dotabuff"]["budget"]["day"].is_null(),
        "{status}"
    );
    assert_eq!(opendota_calls(&t).await, (u64::from(DAILY_LIMIT), 0));
    status_page_shows_the_pause(&t, &resets_at).await;

    // Past midnight: nobody asks, the import finishes by itself.
    t.clock.set(midnight + Duration::from_secs(1));
    let done = wait_for(WAIT, || async {
        let view: Value = t
            .get(&format!("{path}&include=progress"))
            .await
            .json()
            .await
            .ok()?;
        let p = &view["progress"];
        let complete = p["matchesReady"] == 2 && p["playersTotal"] == 15 && p["playersReady"] == 15;
        complete.then_some(view)
    })
    .await
    .expect("the import completes after midnight without a request");
    let progress = &done["progress"];
    assert_eq!(progress["waitingForBudget"], false, "{progress}");
    assert!(progress.get("resumesAt").is_none(), "{progress}");
    assert_eq!(progress["failed"], 0, "{progress}");
    let view: Value = t.get(&path).await.json().await.unwrap();
    assert_eq!(view["progress"]["waitingForBudget"], false, "{view}");

    let stats = t.upstream_stats().await;
    assert_eq!(stats["rateLimited"], 0, "{stats}");
    for (p, s) in stats["paths"].as_object().unwrap() {
        assert_eq!(s["requests"], 1, "{p} fetched once: {stats}");
    }
    assert_eq!(opendota_calls(&t).await, (17, 0));
    let status = t.queue_status_now().await;
    let day = &status["services"]["opendota"]["budget"]["day"];
    assert_eq!(day["remaining"], DAILY_LIMIT - 7, "{status}");
    let next_midnight = rfc3339(midnight + Duration::from_secs(86_400));
    assert_eq!(day["resetsAt"], next_midnight.as_str(), "{status}");
    t.shutdown().await;
}
