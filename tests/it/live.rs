//! Live feeds: `/api/queue/events` (SSE status on change, at most once a second) and `/api/ws`
//! (history, status and ready/failed events over a WebSocket, with subscriptions; bad messages
//! close only that socket with 1003; a client that does not read is dropped).

use std::time::Duration;

use crate::common;

use common::fixtures::ten_players;
use common::{Fixtures, spawn_app, spawn_app_with};
use dota_orchestrator::fixture_upstream::FixtureConfig;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(t: &common::TestApp) -> Socket {
    let url = format!("{}/api/ws", t.base.replace("http://", "ws://"));
    let (socket, resp) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("WebSocket upgrade");
    assert_eq!(resp.status(), 101);
    socket
}

/// The next JSON text message, skipping pings; `None` when the socket ends or `limit` passes.
async fn next_json(socket: &mut Socket, limit: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match message.ok()? {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Reads messages until one satisfies `want`.
async fn until(socket: &mut Socket, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let message = next_json(socket, common::WAIT)
            .await
            .expect("the wanted message before the socket ended");
        if want(&message) {
            return message;
        }
    }
}

#[actix_rt::test]
async fn the_status_stream_sends_a_snapshot_at_once_and_then_on_change_at_most_once_a_second() {
    let fx = Fixtures::new();
    fx.match_with_players(7101, &ten_players(71_000));
    // One call at a time at 200 ms each: the work spans several snapshots.
    let t = spawn_app_with(
        fx,
        FixtureConfig {
            latency: Duration::from_millis(200),
            ..FixtureConfig::default()
        },
        |s| s.max_in_flight = 1,
    )
    .await;
    let resp = t.get("/api/queue/events").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = resp;
    let mut buffer = String::new();
    let mut frames: Vec<Value> = Vec::new();
    let mut posted = false;
    // Read status frames until one shows the posted work done, after one showed it running.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.chunk())
            .await
            .unwrap_or_else(|_| panic!("no finished frame; frames seen: {frames:?}"))
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                assert!(
                    frame
                        .lines()
                        .any(|l| l.trim_end() == "event: status" || l == "event:status")
                );
                frames.push(serde_json::from_str(data.trim()).unwrap());
            }
        }
        if !posted && !frames.is_empty() {
            posted = true;
            assert_eq!(t.post("/api/matches/7101").await.status(), 202);
        }
        let opendota = |f: &Value| f["services"]["opendota"].clone();
        let busy = frames.iter().any(|f| opendota(f)["processing"] == true);
        let done = frames
            .last()
            .is_some_and(|f| opendota(f)["completed"].as_u64() == Some(11));
        if busy && done {
            break;
        }
    }
    // Every frame differs in what it says, and none follows another within a second.
    for pair in frames.windows(2) {
        assert_ne!(pair[0]["services"], pair[1]["services"]);
        let at = |f: &Value| {
            chrono::DateTime::parse_from_rfc3339(f["timestamp"].as_str().unwrap()).unwrap()
        };
        let gap = at(&pair[1]) - at(&pair[0]);
        assert!(
            gap >= chrono::Duration::milliseconds(950),
            "frames {gap} apart"
        );
    }
    let bad = t.get("/api/queue/events?x=1").await;
    assert_eq!(bad.status(), 400);
    t.shutdown().await;
}

#[actix_rt::test]
async fn the_websocket_sends_history_status_and_the_events_a_client_subscribed_to() {
    let fx = Fixtures::new();
    fx.match_with_players(7201, &[None; 10]);
    fx.match_with_players(7202, &[None; 10]);
    fx.match_with_players(7203, &[None; 10]);
    let t = spawn_app(fx).await;
    // Something happened before the page opened: it is in the history.
    t.post("/api/matches/7201").await;
    t.get_when_ready("/api/matches/7201").await;
    t.wait_drained().await;

    let mut socket = connect(&t).await;
    let history = until(&mut socket, |m| m["type"] == "history").await;
    let events = history["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "ready" && e["event"]["id"] == "7201"),
        "{history}"
    );
    let status = until(&mut socket, |m| m["type"] == "status").await;
    assert!(status["status"]["asOf"].is_string());
    assert!(status["status"]["services"]["opendota"].is_object());

    // Only match 7203 from now on, and no status.
    socket
        .send(Message::text(
            r#"{"subscribe":{"kinds":["match"],"ids":["7203"],"status":false}}"#,
        ))
        .await
        .unwrap();
    // Let the subscription arrive before the events it filters.
    tokio::time::sleep(Duration::from_millis(200)).await;
    t.post("/api/matches/7202").await;
    t.get_when_ready("/api/matches/7202").await;
    t.post("/api/matches/7203").await;
    t.get_when_ready("/api/matches/7203").await;
    let next = next_json(&mut socket, common::WAIT).await.unwrap();
    assert_eq!(next["type"], "ready", "{next}");
    assert_eq!(next["event"]["id"], "7203", "7202 was filtered out: {next}");
    assert!(
        next_json(&mut socket, Duration::from_millis(1500))
            .await
            .is_none(),
        "no status messages after status:false"
    );

    // Without the upgrade headers the route says what it is.
    let plain = t.get("/api/ws").await;
    assert_eq!(plain.status(), 426);
    assert!(plain.json::<Value>().await.unwrap()["error"].is_string());
    t.shutdown().await;
}

#[actix_rt::test]
async fn a_bad_message_closes_only_its_socket_and_a_client_that_does_not_read_is_dropped() {
    let fx = Fixtures::new();
    let t = spawn_app(fx).await;
    let mut good = connect(&t).await;
    good.send(Message::text(
        r#"{"subscribe":{"kinds":["player"],"ids":["424242"],"status":false}}"#,
    ))
    .await
    .unwrap();

    let mut bad = connect(&t).await;
    bad.send(Message::text("{not json")).await.unwrap();
    let close = loop {
        match tokio::time::timeout(common::WAIT, bad.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Unsupported);
    assert!(close.reason.contains("not valid JSON"), "{}", close.reason);

    // A client that never reads, while far more events arrive than any buffer holds.
    let slow = connect(&t).await;
    let nats = async_nats::connect(t.app().nats_url()).await.unwrap();
    let padding = "x".repeat(400);
    let flood = 60_000u64;
    for i in 0..flood {
        let event = serde_json::json!({"kind": "match", "id": i.to_string(),
            "signature": format!("match:{}", i + 1), "fetchedAt": padding});
        nats.publish(
            format!("dota.ready.match.{}", i + 1),
            event.to_string().into(),
        )
        .await
        .unwrap();
    }
    nats.flush().await.unwrap();
    // The good socket is still served (the flood was filtered out for it).
    let player = serde_json::json!({"kind": "player", "id": "424242",
        "signature": "player:424242", "fetchedAt": "2026-11-30T00:00:00Z"});
    nats.publish("dota.ready.player.424242", player.to_string().into())
        .await
        .unwrap();
    nats.flush().await.unwrap();
    let seen = until(&mut good, |m| m["type"] == "ready").await;
    assert_eq!(seen["event"]["id"], "424242");

    // The slow socket was dropped: reading it now ends well before the flood's end.
    let mut slow = slow;
    let mut received = 0u64;
    loop {
        match tokio::time::timeout(common::WAIT, slow.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => received += 1,
            Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the slow socket was neither drained nor dropped"),
        }
    }
    assert!(
        received < flood,
        "a client that did not read got all {received} messages: it was buffered, not dropped"
    );
    t.shutdown().await;
}

/// One cap of 64 open streams per instance, event streams and WebSockets together: with 64
/// status streams open, neither another stream nor a WebSocket is accepted.
#[actix_rt::test]
async fn event_streams_and_websockets_share_one_cap_of_64() {
    const MAX_STREAMS: usize = 64;
    let t = spawn_app(Fixtures::new()).await;
    let url = format!("{}/api/queue/events", t.base);
    let opened = (0..MAX_STREAMS).map(|_| t.http.get(&url).send());
    let streams: Vec<reqwest::Response> = futures::future::join_all(opened)
        .await
        .into_iter()
        .map(|resp| resp.expect("stream opened"))
        .collect();
    assert!(streams.iter().all(|s| s.status() == 200));

    assert_eq!(t.get("/api/queue/events").await.status(), 503);
    let ws_url = format!("{}/api/ws", t.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(ws_url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
        }
        Err(other) => panic!("expected a 503, got {other}"),
        Ok((_, resp)) => panic!("upgraded past the cap: {}", resp.status()),
    }
    drop(streams);
    t.shutdown().await;
}
