//! Bounded input on every route: bodies over the cap (declared or chunked) answer 413, an
//! over-long target 414, over-large headers 431, a deeply nested JSON document 400, each with
//! a JSON error, and the service keeps answering afterwards.

use crate::common;

use common::{Fixtures, TestApp, spawn_app};
use dota_orchestrator::http::limits::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_URI_BYTES};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Asserts `resp` is `want` with a JSON `{"error": ...}` body; returns the error text.
async fn json_error(resp: reqwest::Response, want: u16) -> String {
    assert_eq!(resp.status().as_u16(), want);
    let body: Value = resp.json().await.expect("a JSON error body");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error text: {body}"))
        .to_string()
}

/// POSTs `body` as JSON (with its length declared) to the invalidation endpoint.
async fn post_invalidate(t: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    t.http
        .post(format!("{}/api/cache/invalidate", t.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn still_answers(t: &TestApp) {
    assert_eq!(t.get("/healthz").await.status(), 200);
    assert_eq!(t.get("/api/queue/status").await.status(), 200);
}

/// Sends a chunked POST of `total` bytes to `path` over raw TCP (no Content-Length) and returns
/// the raw response. The response is read while the body is still being written, since the
/// server answers as soon as the cap is passed and may close before taking the rest.
async fn chunked_post(t: &TestApp, path: &str, total: usize) -> String {
    let addr = t.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 16 * 1024];
        let mut sent = 0;
        while sent < total {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
            sent += chunk.len();
        }
        wr.write_all(b"0\r\n\r\n").await?;
        wr.flush().await
    });
    let mut out = Vec::new();
    // A reset after the answer is fine: what was read so far is the answer.
    let _ = rd.read_to_end(&mut out).await;
    // The writer may have been cut off by the server closing: that is the expected end.
    let _ = writer.await;
    String::from_utf8_lossy(&out).into_owned()
}

#[actix_rt::test]
async fn a_chunked_body_over_the_cap_is_refused_with_413_json() {
    let t = spawn_app(Fixtures::new()).await;
    let total = usize::try_from(MAX_BODY_BYTES).unwrap() * 2;
    let raw = chunked_post(&t, "/api/cache/invalidate", total).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "answer: {raw:.300}");
    assert!(
        !raw.to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    );
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("request body over")
    );
    // Any route: a GET with a chunked body too.
    let raw = chunked_post(&t, "/api/matches/1", total).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "answer: {raw:.300}");
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_chunked_body_under_the_cap_is_served() {
    let t = spawn_app(Fixtures::new()).await;
    // 32 KiB of spaces is not JSON: the handler sees the whole body and says so.
    let raw = chunked_post(&t, "/api/cache/invalidate", 32 * 1024).await;
    assert!(raw.starts_with("HTTP/1.1 400"), "answer: {raw:.300}");
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_declared_body_over_the_cap_is_refused_with_413_json() {
    let t = spawn_app(Fixtures::new()).await;
    let body = vec![b' '; usize::try_from(MAX_BODY_BYTES).unwrap() + 1];
    json_error(post_invalidate(&t, body).await, 413).await;
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_deeply_nested_json_body_is_a_400_and_nothing_crashes() {
    let t = spawn_app(Fixtures::new()).await;
    for doc in [
        "[".repeat(100_000),
        format!("{{\"items\":{}", "[".repeat(100_000)),
    ] {
        json_error(post_invalidate(&t, doc).await, 400).await;
    }
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn an_over_long_target_is_a_414_on_known_and_unknown_paths() {
    let t = spawn_app(Fixtures::new()).await;
    let long = "a".repeat(MAX_URI_BYTES);
    json_error(t.get(&format!("/api/matches/1?force={long}")).await, 414).await;
    json_error(t.get(&format!("/no/such/{long}")).await, 414).await;
    // Just under the bound is routed as usual (an unknown path: 404).
    let under = "a".repeat(MAX_URI_BYTES - "/x/".len());
    json_error(t.get(&format!("/x/{under}")).await, 404).await;
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn over_large_headers_are_a_431() {
    let t = spawn_app(Fixtures::new()).await;
    let value = "v".repeat(1024);
    let mut req = t.http.get(format!("{}/healthz", t.base));
    for i in 0..(MAX_HEADER_BYTES / 1024 + 1) {
        req = req.header(format!("x-pad-{i}"), &value);
    }
    json_error(req.send().await.unwrap(), 431).await;
    still_answers(&t).await;
    t.shutdown().await;
}

#[actix_rt::test]
async fn the_bounds_are_documented_responses() {
    let t = spawn_app(Fixtures::new()).await;
    let doc: Value = t.get("/api/openapi.json").await.json().await.unwrap();
    for name in ["PayloadTooLarge", "UriTooLong", "HeadersTooLarge"] {
        assert!(
            doc["components"]["responses"][name].is_object(),
            "{name} missing from components.responses"
        );
    }
    t.shutdown().await;
}
