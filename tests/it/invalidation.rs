//! The invalidation API: both item forms, bad items reported, and the admin token.

use crate::common;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app, spawn_app_with};
use dota_orchestrator::config::AdminToken;
use dota_orchestrator::fixture_upstream::FixtureConfig;
use serde_json::{Value, json};

async fn invalidate(t: &common::TestApp, body: Value, token: Option<&str>) -> reqwest::Response {
    let mut req = t
        .http
        .post(format!("{}/api/cache/invalidate", t.base))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

#[actix_rt::test]
async fn invalidation_accepts_both_item_forms_and_reports_bad_items() {
    let fx = Fixtures::new();
    fx.match_with_players(701, &ten_players(70_000));
    fx.match_with_players(702, &[None; 10]);
    let t = spawn_app(fx).await;
    t.post("/api/matches/701").await;
    t.post("/api/matches/702").await;
    t.get_when_ready("/api/matches/701").await;
    t.get_when_ready("/api/matches/702").await;
    t.get_when_ready("/api/players/70000/data").await;

    let resp = invalidate(
        &t,
        json!({"items": [
            {"type": "matches", "id": "701"},
            {"type": "matches", "key": "opendota-match-702.json"},
            {"type": "players", "key": "opendota-player-70000"},
            {"type": "matches", "id": "abc"},
            {"type": "spells", "id": "1"},
            {"type": "players", "key": "opendota-match-1.json"},
            {"id": "5"}
        ]}),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["invalidated"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["errors"].as_array().unwrap().len(), 4, "{body}");
    assert!(
        body["invalidated"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["invalidated"] == 1)
    );

    // Invalidated copies are stale: POST queues a refetch, and it happens once each.
    assert_eq!(t.post("/api/matches/701").await.status(), 202);
    assert_eq!(t.post("/api/matches/702").await.status(), 202);
    common::wait_for(common::WAIT, || async {
        (t.upstream_requests("/opendota/matches/702").await == 2).then_some(())
    })
    .await
    .expect("refetched after invalidation");

    // The older single-item body form works too, and a malformed body is a 400.
    let resp = invalidate(
        &t,
        json!({"type": "matches", "key": "opendota-match-701"}),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = t
        .http
        .post(format!("{}/api/cache/invalidate", t.base))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    t.shutdown().await;
}

#[actix_rt::test]
async fn admin_token_guards_invalidation_and_team_force() {
    let fx = Fixtures::new();
    let t = spawn_app_with(fx, FixtureConfig::default(), |s| {
        s.admin_token = AdminToken::new("s3cret".into());
    })
    .await;
    let body = json!({"items": [{"type": "matches", "id": "1"}]});
    let resp = invalidate(&t, body.clone(), None).await;
    assert_eq!(resp.status(), 401);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("Bearer"));
    assert_eq!(
        invalidate(&t, body.clone(), Some("wrong")).await.status(),
        401
    );
    assert_eq!(invalidate(&t, body, Some("s3cret")).await.status(), 200);

    let force = format!("{}/api/teams/5/matches?leagueId=6&force=true", t.base);
    assert_eq!(t.http.post(&force).send().await.unwrap().status(), 401);
    let ok = t
        .http
        .post(&force)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    // A plain import needs no token.
    assert_eq!(
        t.post("/api/teams/5/matches?leagueId=7").await.status(),
        202
    );
    t.shutdown().await;
}
