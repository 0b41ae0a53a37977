//! The HTTP contract a frontend relies on: input validation, JSON errors, status routes.

use crate::common;

use common::{Fixtures, spawn_app};
use serde_json::Value;

#[actix_rt::test]
async fn bad_ids_get_400_with_a_json_error() {
    let t = spawn_app(Fixtures::new()).await;
    let long = "1".repeat(30);
    for id in ["abc", "-1", "0", long.as_str(), "1.5", "%20"] {
        for path in [
            format!("/api/matches/{id}"),
            format!("/api/players/{id}/data"),
        ] {
            for resp in [t.get(&path).await, t.post(&path).await] {
                assert_eq!(resp.status(), 400, "{path}");
                let body: Value = resp.json().await.expect("JSON error body");
                assert!(
                    body["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{path}: {body}"
                );
            }
        }
    }
    let resp = t.get("/api/matches/5?force=maybe").await;
    assert_eq!(resp.status(), 400);
    let resp = t.get("/api/matches/5?color=blue").await;
    assert_eq!(resp.status(), 400);
    // Nothing reached the upstream.
    assert_eq!(t.upstream_stats().await["total"], 0);
    t.shutdown().await;
}

#[actix_rt::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let t = spawn_app(Fixtures::new()).await;
    for path in [
        "/nope",
        "/api/matches",
        "/api/matches/1/extra",
        "/api/teams",
    ] {
        let resp = t.get(path).await;
        assert_eq!(resp.status(), 404, "{path}");
        // Answered before any route runs, and still with a request ID to quote.
        assert_eq!(resp.headers()["x-request-id"].len(), 36, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    let resp = t
        .http
        .delete(format!("{}/api/matches/1", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["x-request-id"].len(), 36);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string());
    t.shutdown().await;
}

#[actix_rt::test]
async fn health_readiness_status_and_metrics_answer() {
    let t = spawn_app(Fixtures::new()).await;
    assert_eq!(t.get("/healthz").await.status(), 200);
    let ready: Value = t.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["nats"], true);
    assert_eq!(ready["redb"], true);
    let status: Value = t.get("/api/queue/status").await.json().await.unwrap();
    assert!(status["timestamp"].is_string());
    assert!(status["asOf"].is_string());
    for service in ["opendota", "dotabuff"] {
        let s = &status["services"][service];
        for field in [
            "queued",
            "length",
            "inFlight",
            "activeSignatures",
            "completed",
            "failed",
        ] {
            assert!(s[field].is_u64(), "{service}.{field}: {status}");
        }
        assert!(s["activeSignaturesList"].is_array(), "{service}: {status}");
        assert!(s["processing"].is_boolean(), "{service}: {status}");
    }
    let budget = &status["services"]["opendota"]["budget"];
    assert_eq!(budget["limitPerMinute"], 6000);
    assert!(budget["remainingMinute"].as_u64().unwrap() <= 6000);
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("dota_http_requests_total"), "{metrics}");
    t.shutdown().await;
}

#[actix_rt::test]
async fn operational_routes_are_counted_in_the_http_metrics() {
    let t = spawn_app(Fixtures::new()).await;
    assert_eq!(t.get("/healthz").await.status(), 200);
    assert_eq!(t.get("/readyz").await.status(), 200);
    assert_eq!(t.get("/").await.status(), 200);
    // The stream's request is counted when it opens; dropping it closes the stream.
    let stream = t.get("/api/events?kind=match").await;
    assert_eq!(stream.status(), 200);
    drop(stream);
    assert_eq!(t.get("/api/events?kind=bogus").await.status(), 400);
    // A scrape is counted once it is answered, so the second one sees the first.
    t.get("/metrics").await;
    let metrics = t.get("/metrics").await.text().await.unwrap();
    for (route, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/", 200),
        ("/api/events", 200),
        ("/api/events", 400),
        ("/metrics", 200),
    ] {
        let series = format!(
            "dota_http_requests_total{{route=\"{route}\",method=\"GET\",status=\"{status}\"}}"
        );
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
        let latency =
            format!("dota_http_request_duration_seconds_count{{route=\"{route}\",method=\"GET\"}}");
        assert!(metrics.contains(&latency), "{latency} missing");
    }
    t.shutdown().await;
}
