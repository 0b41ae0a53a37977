//! `GET /api/events` over real HTTP against the real app: result events published on core NATS
//! arrive as Server-Sent Events named `ready`/`failed` with the published JSON as data, a
//! `?kind=` filter holds back other kinds, and bad queries are 400s with a JSON error.

use crate::common;

use std::collections::BTreeSet;

use common::fixtures::ten_players;
use common::{Fixtures, TestApp, WAIT, spawn_app};
use serde_json::Value;

/// One parsed SSE event (comments and keep-alives are skipped).
#[derive(Debug, Clone)]
struct SseEvent {
    event: String,
    data: String,
}

impl SseEvent {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

/// Reads an SSE response incrementally.
struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl SseReader {
    async fn open(t: &TestApp, query: &str) -> SseReader {
        let resp = t.get(&format!("/api/events{query}")).await;
        assert_eq!(resp.status(), 200, "GET /api/events{query}");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next complete event, waiting at most until `deadline`.
    async fn next(&mut self, deadline: tokio::time::Instant) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                let frame = String::from_utf8(frame).expect("SSE is UTF-8");
                let mut event = String::new();
                let mut data = Vec::new();
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_string());
                    }
                }
                if !event.is_empty() || !data.is_empty() {
                    return Some(SseEvent {
                        event,
                        data: data.join("\n"),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .ok()?
                .expect("SSE stream readable")?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Reads until an event satisfies `want`; returns everything read, the match last.
    async fn read_until(
        &mut self,
        what: &str,
        mut want: impl FnMut(&SseEvent) -> bool,
    ) -> Vec<SseEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let Some(ev) = self.next(deadline).await else {
                panic!("no {what} within {WAIT:?}; saw {seen:?}");
            };
            let done = want(&ev);
            seen.push(ev);
            if done {
                return seen;
            }
        }
    }
}

#[actix_rt::test]
async fn ready_events_arrive_as_sse_and_the_kind_filter_holds_back_players() {
    let fx = Fixtures::new();
    let players = ten_players(7000);
    fx.match_with_players(501, &players);
    fx.match_with_players(502, &players);
    let t = spawn_app(fx).await;
    let mut matches_only = SseReader::open(&t, "?kind=match").await;
    let mut everything = SseReader::open(&t, "").await;

    assert_eq!(t.post("/api/matches/501").await.status(), 202);
    let seen = matches_only
        .read_until("match:501 ready", |e| {
            e.event == "ready" && e.data.contains("\"match:501\"")
        })
        .await;
    let body = seen.last().expect("event").json();
    assert_eq!(body["kind"], "match");
    assert_eq!(body["id"], "501");
    assert_eq!(body["signature"], "match:501");
    assert!(body["fetchedAt"].is_string(), "{body}");

    // The unfiltered stream sees every player of the match become ready...
    let mut ready_players = BTreeSet::new();
    everything
        .read_until("ten player events", |e| {
            if e.event == "ready" && e.json()["kind"] == "player" {
                ready_players.insert(e.json()["signature"].as_str().unwrap().to_string());
            }
            ready_players.len() == players.len()
        })
        .await;
    // ...so they were delivered before match 502 is even posted; the filtered stream relays in
    // delivery order, so anything it let through would show up before match:502.
    assert_eq!(t.post("/api/matches/502").await.status(), 202);
    let later = matches_only
        .read_until("match:502 ready", |e| e.data.contains("\"match:502\""))
        .await;
    for ev in seen.iter().chain(&later) {
        assert_eq!(ev.event, "ready", "{ev:?}");
        assert_eq!(
            ev.json()["kind"],
            "match",
            "filtered stream let through {ev:?}"
        );
    }
    drop((matches_only, everything));
    t.shutdown().await;
}

#[actix_rt::test]
async fn permanent_failures_arrive_as_failed_events() {
    let t = spawn_app(Fixtures::new()).await;
    let mut events = SseReader::open(&t, "?kind=match,player").await;
    // No fixture for this match: the upstream answers 404, a permanent failure.
    assert_eq!(t.post("/api/matches/503").await.status(), 202);
    let seen = events
        .read_until("match:503 failed", |e| e.data.contains("\"match:503\""))
        .await;
    let ev = seen.last().expect("event");
    assert_eq!(ev.event, "failed");
    let body = ev.json();
    assert_eq!(body["kind"], "match");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("404")),
        "{body}"
    );
    assert!(body["failedAt"].is_string(), "{body}");
    drop(events);
    t.shutdown().await;
}

#[actix_rt::test]
async fn unknown_kinds_and_query_keys_get_400_with_a_json_error() {
    let t = spawn_app(Fixtures::new()).await;
    for query in [
        "?kind=bogus",
        "?kind=match,bogus",
        "?kind=",
        "?kind=match,",
        "?color=blue",
        "?kind=match&since=1",
    ] {
        let resp = t.get(&format!("/api/events{query}")).await;
        assert_eq!(resp.status(), 400, "{query}");
        let body: Value = resp.json().await.expect("JSON error body");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {body}"
        );
    }
    // Every documented kind is accepted.
    let all = SseReader::open(&t, "?kind=match,player,player-stats,team,league").await;
    drop(all);
    let resp = t.post("/api/events").await;
    assert_eq!(resp.status(), 405);
    // Opening and rejecting streams is counted under the route template.
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dota_http_requests_total")
                && l.contains("route=\"/api/events\"")
                && l.contains("status=\"400\"")),
        "{metrics}"
    );
    t.shutdown().await;
}
