//! The read path of ready data (issue: a read path that never waits on the writer): fresh hits
//! write nothing, claims stay one upstream call per resource under concurrency, no stale body
//! after an invalidation or a refetch, ETag/304, gzip and br, the hot cache bound, and the team
//! view's progress-only form and ETag.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common;

use common::fixtures::{match_json, row, ten_players};
use common::{Fixtures, spawn_app, spawn_app_with};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

/// A metric's value summed over every series whose labels contain `labels`.
async fn metric(t: &common::TestApp, name: &str, labels: &str) -> f64 {
    let text = t.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            let rest = &l[name.len()..];
            (rest.starts_with(' ') || rest.starts_with('{')) && l.contains(labels)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn get_with(t: &common::TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = t.http.get(format!("{}{}", t.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Invalidates one stored resource through the API.
async fn invalidate(t: &common::TestApp, kind: &str, id: &str) {
    let resp = t
        .http
        .post(format!("{}/api/cache/invalidate", t.base))
        .json(&json!({"items": [{"type": kind, "id": id}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A match body of realistic size (~280 KB): OpenDota's per-player arrays padded out.
fn big_match(id: u64, players: &[Option<u64>], score: u64) -> Value {
    let mut body = match_json(id, players);
    body["radiant_score"] = json!(score);
    for p in body["players"].as_array_mut().unwrap() {
        p["gold_t"] = json!((0..3600u64).map(|i| i * 7 % 1000).collect::<Vec<_>>());
        p["xp_t"] = json!((0..3600u64).map(|i| i * 13 % 997).collect::<Vec<_>>());
    }
    body
}

#[actix_rt::test]
async fn fresh_hits_are_served_without_a_write_and_claims_stay_one_call_per_resource() {
    let fx = Fixtures::new();
    fx.match_with_players(9001, &ten_players(90_000));
    let t = spawn_app_with(
        fx,
        FixtureConfig {
            latency: std::time::Duration::from_millis(100),
            ..FixtureConfig::default()
        },
        |_| {},
    )
    .await;

    // 64 clients at once, half POST, half GET, on a match nobody has fetched.
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let (http, url) = (t.http.clone(), format!("{}/api/matches/9001", t.base));
            tokio::spawn(async move {
                let req = if i % 2 == 0 {
                    http.post(&url)
                } else {
                    http.get(&url)
                };
                req.send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    for c in clients {
        assert!([200, 202].contains(&c.await.unwrap()));
    }
    t.get_when_ready("/api/matches/9001").await;
    for p in 90_000..90_010 {
        t.get_when_ready(&format!("/api/players/{p}/data")).await;
    }
    t.wait_drained().await;
    assert_eq!(t.upstream_requests("/opendota/matches/9001").await, 1);
    for p in 90_000..90_010 {
        assert_eq!(
            t.upstream_requests(&format!("/opendota/players/{p}")).await,
            1
        );
    }

    // Ready now: polls and POSTs of fresh data write nothing to redb. (This app's own count:
    // the metrics registry is shared by every test running in this process.)
    let writes = || t.app().store_health().writes();
    let before = writes();
    assert!(before > 0, "the import itself wrote");
    for _ in 0..50 {
        assert_eq!(t.get("/api/matches/9001").await.status(), 200);
        let resp = t.post("/api/players/90003/data").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["status"], "ready");
    }
    assert_eq!(writes(), before);
    // A force still goes through the writer.
    assert_eq!(t.post("/api/matches/9001?force=true").await.status(), 202);
    assert!(writes() > before);
    t.shutdown().await;
}

#[actix_rt::test]
async fn no_stale_body_is_served_after_an_invalidation_or_a_refetch() {
    let fx = Fixtures::new();
    let players = ten_players(91_000);
    let write_generation = |fx: &Fixtures, n: u64| {
        let mut body = match_json(9100, &players);
        body["radiant_score"] = json!(n);
        fx.raw("opendota/matches/9100.json", body.to_string());
    };
    write_generation(&fx, 0);
    for p in players.iter().flatten() {
        fx.player(*p);
    }
    let t = Arc::new(spawn_app(fx).await);
    let score = |v: &Value| v["radiant_score"].as_u64().unwrap();
    assert_eq!(score(&t.get_when_ready("/api/matches/9100").await), 0);

    // Pollers keep the hot cache busy (and racing the writer) the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (t, stop) = (t.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = t.get("/api/matches/9100").await.bytes().await;
                }
            })
        })
        .collect();

    for generation in 1..=4u64 {
        write_generation(&t.fixtures, generation);
        // Invalidate through the API or force through a POST, alternately.
        if generation % 2 == 1 {
            invalidate(&t, "matches", "9100").await;
        } else {
            assert_eq!(t.post("/api/matches/9100?force=true").await.status(), 202);
        }
        // The very next request must not call the old copy fresh.
        let resp = t.get("/api/matches/9100").await;
        let status = resp
            .headers()
            .get("x-cache-status")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        if body.get("radiant_score").is_some() && score(&body) != generation {
            assert_ne!(status.as_deref(), Some("fresh"), "generation {generation}");
        }
        // Once the new copy is served, the old one never comes back.
        let fresh = common::wait_for(common::WAIT, || async {
            let resp = t.get("/api/matches/9100").await;
            let fresh =
                resp.headers().get("x-cache-status").map(|v| v.as_bytes()) == Some(b"fresh");
            let body: Value = resp.json().await.ok()?;
            (fresh && body.get("radiant_score").is_some()).then_some(score(&body))
        })
        .await
        .expect("a fresh copy again");
        assert_eq!(fresh, generation, "a fresh answer carried an old body");
        for _ in 0..20 {
            let body: Value = t.get("/api/matches/9100").await.json().await.unwrap();
            assert_eq!(score(&body), generation);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        p.await.unwrap();
    }
    match Arc::try_unwrap(t) {
        Ok(t) => t.shutdown().await,
        Err(_) => panic!("pollers still hold the app"),
    }
}

#[actix_rt::test]
async fn pollers_get_etags_304s_and_precompressed_bodies() {
    let fx = Fixtures::new();
    let players = ten_players(92_000);
    fx.raw(
        "opendota/matches/9200.json",
        big_match(9200, &players, 1).to_string(),
    );
    for p in players.iter().flatten() {
        fx.player(*p);
    }
    let t = spawn_app(fx).await;
    t.post("/api/matches/9200").await;
    let plain_json = t.get_when_ready("/api/matches/9200").await;

    let plain = t.get("/api/matches/9200").await;
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    assert!(plain.headers().get("content-encoding").is_none());
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 200_000, "a realistic size: {}", plain.len());

    let gz = get_with(&t, "/api/matches/9200", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["vary"], "Accept-Encoding");
    let gz = gz.bytes().await.unwrap();
    // One stored form (gzip): a browser, which takes br and gzip, gets it as stored; a client
    // that takes only br gets the plain bytes (identity is always acceptable).
    let browser = get_with(
        &t,
        "/api/matches/9200",
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(browser.headers()["content-encoding"], "gzip");
    assert_eq!(browser.bytes().await.unwrap(), gz);
    let br_only = get_with(&t, "/api/matches/9200", &[("accept-encoding", "br")]).await;
    assert!(br_only.headers().get("content-encoding").is_none());
    assert_eq!(br_only.bytes().await.unwrap(), plain);
    assert_eq!(gunzip(&gz), plain);
    assert_eq!(serde_json::from_slice::<Value>(&plain).unwrap(), plain_json);
    assert!(
        gz.len() * 4 < plain.len(),
        "gzip {} of {}",
        gz.len(),
        plain.len()
    );

    // The ETag round trip, in any encoding.
    for accept in ["identity", "gzip", "br"] {
        let resp = get_with(
            &t,
            "/api/matches/9200",
            &[("if-none-match", &etag), ("accept-encoding", accept)],
        )
        .await;
        assert_eq!(resp.status(), 304, "{accept}");
        assert!(resp.headers().get("etag").is_some());
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    assert!(metric(&t, "dota_http_not_modified_total", "").await >= 3.0);
    let other = get_with(&t, "/api/matches/9200", &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(other.status(), 200);

    // A refetch of the same content keeps the tag; new content changes it.
    assert_eq!(t.post("/api/matches/9200?force=true").await.status(), 202);
    t.wait_drained().await;
    let same = get_with(&t, "/api/matches/9200", &[("if-none-match", &etag)]).await;
    assert_eq!(same.status(), 304, "unchanged content, unchanged tag");
    t.fixtures.raw(
        "opendota/matches/9200.json",
        big_match(9200, &players, 2).to_string(),
    );
    assert_eq!(t.post("/api/matches/9200?force=true").await.status(), 202);
    t.wait_drained().await;
    let changed = get_with(&t, "/api/matches/9200", &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(changed.json::<Value>().await.unwrap()["radiant_score"], 2);

    // The hot cache is bounded by --hot-cache-mb (64 by default) and says what it holds. Its
    // values are this app's own: /metrics is shared by every test app in this process, so it
    // is checked for the series only.
    assert_eq!(t.app().hot_cache().capacity(), 64 * 1024 * 1024);
    assert!(t.app().hot_cache().usage().0 > 0);
    let text = t.get("/metrics").await.text().await.unwrap();
    for name in [
        "dota_hot_cache_bytes ",
        "dota_hot_cache_entries ",
        "dota_hot_cache_capacity_bytes ",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_small_hot_cache_stays_in_bounds_and_a_disabled_one_still_serves() {
    let fx = Fixtures::new();
    for m in 0..8u64 {
        fx.raw(
            &format!("opendota/matches/{}.json", 9300 + m),
            big_match(9300 + m, &[None; 10], m).to_string(),
        );
    }
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| s.hot_cache_mb = 1).await;
    for m in 0..8u64 {
        t.post(&format!("/api/matches/{}", 9300 + m)).await;
    }
    for _ in 0..2 {
        for m in 0..8u64 {
            let body = t
                .get_when_ready(&format!("/api/matches/{}", 9300 + m))
                .await;
            assert_eq!(body["radiant_score"], m);
        }
    }
    let (held, entries) = t.app().hot_cache().usage();
    assert!(entries > 0, "something is held");
    assert!(held <= 1024 * 1024, "held {held} bytes over a 1 MiB bound");
    t.shutdown().await;

    let fx = Fixtures::new();
    fx.match_with_players(9400, &[None; 10]);
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| s.hot_cache_mb = 0).await;
    t.post("/api/matches/9400").await;
    t.get_when_ready("/api/matches/9400").await;
    let gz = get_with(&t, "/api/matches/9400", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(t.app().hot_cache().capacity(), 0);
    assert_eq!(t.app().hot_cache().usage(), (0, 0));
    t.shutdown().await;
}

#[actix_rt::test]
async fn the_team_view_has_a_progress_only_form_and_an_etag() {
    let fx = Fixtures::new();
    let (team, league) = (9517508, 16435);
    fx.dotabuff_team(
        team,
        "Maple Syrup",
        &[vec![row(9501, league), row(9502, league)]],
    );
    fx.match_with_players(9501, &ten_players(95_000));
    fx.match_with_players(9502, &ten_players(95_100));
    let t = spawn_app(fx).await;
    let path = format!("/api/teams/{team}/matches?leagueId={league}");
    assert_eq!(t.post(&path).await.status(), 202);
    t.wait_drained().await;

    let full = t.get(&path).await;
    assert_eq!(full.status(), 200);
    let etag = full.headers()["etag"].to_str().unwrap().to_string();
    let full: Value = full.json().await.unwrap();
    assert_eq!(full["progress"]["matchesReady"], 2);
    assert_eq!(full["progress"]["playersReady"], 20);
    assert_eq!(full["matches"].as_array().unwrap().len(), 2);

    let progress: Value = t
        .get(&format!("{path}&include=progress"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(progress["progress"], full["progress"]);
    assert_eq!(progress["teamId"], full["teamId"]);
    assert!(progress.get("matches").is_none() && progress.get("players").is_none());
    let bad = t.get(&format!("{path}&include=everything")).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].is_string());

    // Unchanged: a 304. Compressed forms decode to the same view.
    let again = get_with(&t, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    let gz = get_with(&t, &path, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz: Value = serde_json::from_slice(&gunzip(&gz.bytes().await.unwrap())).unwrap();
    assert_eq!(gz, full);

    // A player's refetch changes the view's summaries only if its data changed; a failure
    // changes the progress, and with it the tag.
    t.fault("/opendota/players/95003", 404, None, None).await;
    invalidate(&t, "players", "95003").await;
    assert_eq!(t.post("/api/players/95003/data").await.status(), 202);
    t.wait_drained().await;
    let changed = get_with(&t, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["progress"]["failed"], 1);
    assert_eq!(changed["progress"]["playersReady"], 19);
    t.shutdown().await;
}

/// A poll of data in memory is answered before any span or handler (the router's fast path):
/// it must look exactly like the full path's answer, and leave bad queries to the full path.
#[actix_rt::test]
async fn a_poll_answered_from_memory_is_the_full_answer() {
    let fx = Fixtures::new();
    fx.match_with_players(9301, &ten_players(93_000));
    let t = spawn_app(fx).await;
    let path = "/api/players/93004/data";
    let first_body = t.get_when_ready(path).await;
    for accept in ["gzip", "identity"] {
        let mut etags = Vec::new();
        for (i, id) in ["poll-1", "poll-2", "poll-3"].iter().enumerate() {
            let resp = get_with(
                &t,
                path,
                &[("x-request-id", id), ("accept-encoding", accept)],
            )
            .await;
            assert_eq!(resp.status(), 200, "{accept} poll {i}");
            let h = resp.headers().clone();
            assert_eq!(h["x-request-id"], *id, "{accept} poll {i}");
            assert_eq!(h["x-cache-status"], "fresh");
            assert_eq!(h["vary"], "Accept-Encoding");
            assert_eq!(h["content-type"], "application/json");
            assert_eq!(
                h.get("content-encoding").map(|v| v.to_str().unwrap()),
                (accept == "gzip").then_some("gzip")
            );
            let bytes = resp.bytes().await.unwrap();
            let body = if accept == "gzip" {
                gunzip(&bytes)
            } else {
                bytes.to_vec()
            };
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), first_body);
            etags.push(h["etag"].to_str().unwrap().to_string());
        }
        assert!(etags.windows(2).all(|w| w[0] == w[1]), "{etags:?}");
        let resp = get_with(
            &t,
            path,
            &[
                ("if-none-match", &etags[0]),
                ("accept-encoding", accept),
                ("x-request-id", "poll-304"),
            ],
        )
        .await;
        assert_eq!(resp.status(), 304);
        assert_eq!(resp.headers()["x-request-id"], "poll-304");
    }
    // A query the route does not take is still a 400 with a JSON error, and an ID that is not
    // one still a 400: the fast path leaves both to the handler.
    let resp = t.get(&format!("{path}?bogus=1")).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(t.get("/api/players/0/data").await.status(), 400);
    // `force=false` is a plain poll; `force=true` goes on to the CacheKeeper.
    assert_eq!(t.get(&format!("{path}?force=false")).await.status(), 200);
    assert_eq!(t.get(&format!("{path}?force=true")).await.status(), 200);
    t.shutdown().await;
}
