//! The live status page at `GET /`, exercised in a real headless Chromium against the real app
//! in demo mode (bundled data set behind the fixture upstream): the service table and the feed
//! fill from the `/api/ws` WebSocket (status, the last events on load, new events), and a team import
//! started from the form runs to 100%. Screenshots land in `target/test-artifacts/`.
//!
//! Needs the Debian package `chromium` (`$CHROMIUM` overrides the binary). Without it the
//! browser tests print a skip note, unless `$CI` is set, where they fail.

use crate::chromium;
use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use chromium::Chromium;
use common::{DemoApp, WAIT, spawn_demo_app};
use serde_json::Value;

/// Maple Syrup in RD2L Season 33 (see `fixtures/demo/README.md`).
const DEMO_TEAM: u64 = 9517508;
const DEMO_LEAGUE: u64 = 16435;
/// A league match of the demo set with ten named players.
const DEMO_MATCH: u64 = 7940008222;
/// A whole team import through the demo upstream, page polling included.
const IMPORT_LIMIT: Duration = Duration::from_secs(90);

fn artifact(name: &str) -> PathBuf {
    common::repo_path("target/test-artifacts").join(name)
}

/// True once the service table shows numbers and the snapshot time (`asOf`) from at least one
/// `/api/queue/status` answer.
const TABLE_FILLED: &str = r#"(() => {
  const text = (id) => document.getElementById(id).textContent;
  const row = {
    state: text('opendota-state'), queued: text('opendota-queued'), inFlight: text('opendota-inflight'),
    completed: text('opendota-completed'), failed: text('opendota-failed'),
    budgetMinute: text('opendota-budget-minute'), budgetDay: text('opendota-budget-day'),
    dotabuffQueued: text('dotabuff-queued'), dotabuffMinute: text('dotabuff-budget-minute'),
    updated: text('status-updated'),
  };
  const numeric = /^(idle|queued|processing)$/.test(row.state) && /^data as of /.test(row.updated)
    && /^\d/.test(row.queued) && /^\d/.test(row.completed) && /^\d/.test(row.dotabuffQueued)
    && /^[\d,]+ \/ [\d,]+/.test(row.budgetMinute) && /^[\d,]+ \/ [\d,]+/.test(row.budgetDay)
    && /\/min/.test(row.dotabuffMinute);
  return numeric ? row : null;
})()"#;

/// The feed's items once it holds at least one ready match and one ready player.
const FEED_HAS_MATCH_AND_PLAYER: &str = r#"(() => {
  const items = [...document.querySelectorAll('#feed li')].map((li) => li.textContent);
  const has = (s) => items.some((t) => t.includes('ready') && t.includes(s));
  return has('match:') && has('player:') ? items : null;
})()"#;

/// Polls `condition` (a JS expression) until it yields something other than null/false.
/// On timeout, saves a screenshot and fails with the page's visible state.
async fn wait_page(browser: &mut Chromium, what: &str, limit: Duration, condition: &str) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = browser.eval(condition).await;
        if !value.is_null() && value != false {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            let shot = artifact("status-page-failure.png");
            browser.screenshot(&shot).await;
            let state = browser
                .eval(
                    "({import: document.getElementById('import-status').textContent, \
                      progress: document.getElementById('progress-text').textContent, \
                      statusError: document.getElementById('status-error').textContent, \
                      feedState: document.getElementById('feed-state').textContent, \
                      feed: document.getElementById('feed').children.length})",
                )
                .await;
            panic!(
                "{what} not seen within {limit:?}; page state {state}; screenshot {}",
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Demo app plus a browser on its status page, once the table and the event stream are live.
async fn open_status_page(test: &str) -> Option<(DemoApp, Chromium)> {
    let binary = chromium::find_or_skip(test)?;
    let app = spawn_demo_app().await;
    let mut browser = Chromium::launch(&binary).await;
    browser.navigate(&format!("{}/", app.base)).await;
    let title = browser.eval("document.title").await;
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.contains("dota-orchestrator")),
        "{title}"
    );
    let row = wait_page(
        &mut browser,
        "queue status in the table",
        WAIT,
        TABLE_FILLED,
    )
    .await;
    assert_eq!(row["queued"], "0", "nothing queued yet: {row}");
    assert_eq!(row["state"], "idle", "{row}");
    assert!(
        row["budgetMinute"]
            .as_str()
            .is_some_and(|b| b.contains("/ 6,000")),
        "OpenDota minute budget shows the configured limit: {row}"
    );
    wait_page(
        &mut browser,
        "the event stream connected",
        WAIT,
        "document.getElementById('feed-state').textContent === 'live'",
    )
    .await;
    Some((app, browser))
}

#[actix_rt::test]
async fn status_page_is_served_as_self_contained_html() {
    let app = spawn_demo_app().await;
    let resp = app
        .http
        .get(format!("{}/", app.base))
        .send()
        .await
        .expect("GET /");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    let html = resp.text().await.unwrap();
    for id in [
        "import-team",
        "import-league",
        "import-start",
        "progress-bar",
        "progress-text",
        "feed",
        "opendota-queued",
        "opendota-state",
        "dotabuff-budget-minute",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "#{id} missing");
    }
    // No external resources: nothing is loaded from another origin.
    for attr in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
    ] {
        assert!(!html.contains(attr), "page references {attr}");
    }
    app.shutdown().await;
}

/// A page opened after the work was done still shows it: the WebSocket sends the last events
/// on connect, so the feed is not empty until the next event.
#[actix_rt::test]
async fn status_page_shows_recent_events_on_load() {
    let Some(binary) = chromium::find_or_skip("status_page_shows_recent_events_on_load") else {
        return;
    };
    let app = spawn_demo_app().await;
    assert_eq!(
        app.post(&format!("/api/matches/{DEMO_MATCH}"))
            .await
            .status(),
        202
    );
    let ready = common::wait_for(WAIT, || async {
        let resp = app
            .http
            .get(format!("{}/api/matches/{DEMO_MATCH}", app.base))
            .send()
            .await
            .ok()?;
        (resp.status() == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the match was stored");
    let mut browser = Chromium::launch(&binary).await;
    browser.navigate(&format!("{}/", app.base)).await;
    let items = wait_page(
        &mut browser,
        "the stored match in the feed on load",
        WAIT,
        r#"(() => {
  const items = [...document.querySelectorAll('#feed li')].map((li) => li.textContent);
  return items.some((t) => t.includes('ready') && t.includes('match:')) ? items : null;
})()"#,
    )
    .await;
    assert!(
        items.to_string().contains(&format!("match:{DEMO_MATCH}")),
        "{items}"
    );
    browser.close().await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn status_page_lists_tracked_imports_on_load() {
    let Some(binary) = chromium::find_or_skip("status_page_lists_tracked_imports_on_load") else {
        return;
    };
    let app = spawn_demo_app().await;
    let path = format!("/api/teams/{DEMO_TEAM}/matches?leagueId={DEMO_LEAGUE}");
    assert!(app.post(&path).await.status().is_success());
    let mut browser = Chromium::launch(&binary).await;
    browser.navigate(&format!("{}/", app.base)).await;
    let row = wait_page(
        &mut browser,
        "the requested import among the tracked ones",
        WAIT,
        &format!(
            r#"(() => {{
  const row = document.querySelector('#tracked tbody tr[data-signature="team:{DEMO_TEAM}:{DEMO_LEAGUE}"]');
  return row ? {{ cells: [...row.cells].map((c) => c.textContent),
                  state: document.getElementById('tracked-state').textContent }} : null;
}})()"#
        ),
    )
    .await;
    assert!(
        row["cells"][0]
            .as_str()
            .is_some_and(|c| c.contains(&DEMO_TEAM.to_string())),
        "{row}"
    );
    // The demo runs without --auto-refresh: tracked, but not refreshed.
    assert_eq!(row["cells"][2], "off", "{row}");
    assert!(
        row["state"]
            .as_str()
            .is_some_and(|s| s.contains("auto-refresh off")),
        "{row}"
    );
    browser.close().await;
    app.shutdown().await;
}

#[actix_rt::test]
async fn status_page_feed_shows_ready_resources() {
    let Some((app, mut browser)) = open_status_page("status_page_feed_shows_ready_resources").await
    else {
        return;
    };
    assert_eq!(
        app.post(&format!("/api/matches/{DEMO_MATCH}"))
            .await
            .status(),
        202
    );
    let items = wait_page(
        &mut browser,
        "a ready match and a ready player in the feed",
        WAIT,
        FEED_HAS_MATCH_AND_PLAYER,
    )
    .await;
    let items: Vec<String> = serde_json::from_value(items).expect("feed items");
    assert!(
        items
            .iter()
            .any(|t| t.contains(&format!("match:{DEMO_MATCH}"))),
        "{items:?}"
    );
    // The table catches up with the finished work on a later refresh.
    wait_page(
        &mut browser,
        "completed work in the table",
        WAIT,
        "Number(document.getElementById('opendota-completed').textContent.replace(/,/g, '')) >= 11",
    )
    .await;
    browser.screenshot(&artifact("status-page-feed.png")).await;
    browser.close().await;
    app.shutdown().await;
}

/// The page's half of the team import contract, independent of the server's endpoint: `fetch`
/// is stubbed for `/api/teams/...` only, answering POST with 202 and the polls with a queued
/// 202, a partial team record (players total unknown) and a finished one.
#[actix_rt::test]
async fn status_page_import_progress_follows_the_team_contract() {
    let Some((app, mut browser)) =
        open_status_page("status_page_import_progress_follows_the_team_contract").await
    else {
        return;
    };
    browser
        .eval(
            r#"(() => {
          const record = (progress) => [200, {teamId: 9517508, teamName: 'Maple Syrup',
            leagueId: 16435, leagueName: 'RD2L Season 33', matchIds: [1, 2], source: 'dotabuff',
            progress, matches: [], players: []}];
          const answers = [
            [202, {status: 'queued', signature: 'team:9517508:16435'}],
            [202, {status: 'queued'}],
            record({matchesReady: 1, matchesTotal: 2, playersReady: 0, playersTotal: null, failed: 0}),
            record({matchesReady: 2, matchesTotal: 2, playersReady: 9, playersTotal: 10, failed: 1}),
          ];
          const real = window.fetch.bind(window);
          window.teamCalls = [];
          window.fetch = (url, options) => {
            if (!String(url).startsWith('/api/teams/')) return real(url, options);
            window.teamCalls.push(`${(options && options.method) || 'GET'} ${url}`);
            const [status, body] = answers[Math.min(window.teamCalls.length, answers.length) - 1];
            return Promise.resolve(new Response(JSON.stringify(body),
              {status, headers: {'content-type': 'application/json'}}));
          };
          document.getElementById('import-team').value = '9517508';
          document.getElementById('import-league').value = '16435';
          document.getElementById('import-start').click();
        })()"#,
        )
        .await;
    // Totals not all known yet: the share done so far, never 100%.
    let partial = wait_page(
        &mut browser,
        "50% while the players total is unknown",
        WAIT,
        "(t => t.startsWith('50%') ? t : null)(document.getElementById('progress-text').textContent)",
    )
    .await;
    assert!(
        partial.as_str().unwrap().contains("matches 1/2"),
        "{partial}"
    );
    let done = wait_page(
        &mut browser,
        "100% once everything is ready or failed",
        WAIT,
        "(t => t.startsWith('100%') ? t : null)(document.getElementById('progress-text').textContent)",
    )
    .await;
    assert!(done.as_str().unwrap().contains("failed 1"), "{done}");
    let bar = browser
        .eval("document.getElementById('progress-bar').style.width")
        .await;
    assert_eq!(bar, "100%");
    let status = browser
        .eval("document.getElementById('import-status').textContent")
        .await;
    assert_eq!(status, "Maple Syrup in RD2L Season 33: 2 matches");
    let calls = browser.eval("window.teamCalls").await;
    let url = "/api/teams/9517508/matches?leagueId=16435";
    assert_eq!(
        calls,
        serde_json::json!([
            format!("POST {url}"),
            format!("GET {url}"),
            format!("GET {url}"),
            format!("GET {url}")
        ])
    );
    browser.close().await;
    app.shutdown().await;
}

/// Needs the team import endpoint (`POST|GET /api/teams/{teamId}/matches?leagueId=`).
#[actix_rt::test]
async fn status_page_imports_a_team_to_100_percent() {
    let Some((app, mut browser)) =
        open_status_page("status_page_imports_a_team_to_100_percent").await
    else {
        return;
    };
    browser
        .eval(&format!(
            "document.getElementById('import-team').value = '{DEMO_TEAM}'; \
             document.getElementById('import-league').value = '{DEMO_LEAGUE}'; \
             document.getElementById('import-start').click();"
        ))
        .await;
    let done = wait_page(
        &mut browser,
        "the import at 100% (or an import error)",
        IMPORT_LIMIT,
        r#"(() => {
          const status = document.getElementById('import-status');
          if (status.classList.contains('error')) return {error: status.textContent};
          const text = document.getElementById('progress-text').textContent;
          return text.startsWith('100%') ? {progress: text, status: status.textContent} : null;
        })()"#,
    )
    .await;
    if let Some(err) = done.get("error") {
        browser
            .screenshot(&artifact("status-page-failure.png"))
            .await;
        panic!("the page reported an import error: {err}");
    }
    let width = browser
        .eval("document.getElementById('progress-bar').style.width")
        .await;
    assert_eq!(width, "100%", "{done}");
    wait_page(
        &mut browser,
        "a ready match and a ready player in the feed",
        WAIT,
        FEED_HAS_MATCH_AND_PLAYER,
    )
    .await;
    browser.screenshot(&artifact("status-page.png")).await;
    browser.close().await;
    app.shutdown().await;
}
