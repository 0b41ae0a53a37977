//! `GET /api/ws`: one WebSocket for a live dashboard. The server sends JSON text messages:
//! `{"type":"history","events":[...]}` once (the last ready/failed events), `{"type":"status",
//! "status":{...}}` with the queue status at once and on every change (at most once a second),
//! and `{"type":"ready"|"failed","id":<ce-id>,"eventType":<ce-type>,"event":{...}}` as resources
//! become ready or fail. The client
//! may send `{"subscribe":{"kinds":["match"],"ids":["7930696222"],"status":true}}` to keep only
//! those events (an empty or absent list means all; `status: false` stops the status messages).
//!
//! A message that is not valid JSON, or not a subscription, closes that socket with close code
//! 1003 and a reason; other sockets go on. A client that reads slower than messages arrive is
//! dropped once [`SOCKET_BUFFER`] messages wait for it: nothing is buffered without bound.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use warp::Filter;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::ApiState;
use super::events::Streams;
use super::live::{Relayed, status_changes};
use super::reply::{ApiError, json};
use super::router::Request;
use crate::bus::results;
use crate::domain::ResourceKind;

/// Messages that may wait for one client before it is dropped as too slow.
pub const SOCKET_BUFFER: usize = 256;
/// Close code for a message the server cannot take (RFC 6455 "unsupported data").
const UNSUPPORTED_DATA: u16 = 1003;
/// Close code for a client dropped as too slow ("try again later").
const TRY_AGAIN_LATER: u16 = 1013;

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    subscribe: Subscription,
}

/// Which messages a client wants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscription {
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default = "yes")]
    status: bool,
}

fn yes() -> bool {
    true
}

/// The subscription as checked: kinds known, ids as given.
#[derive(Debug, Clone, Default)]
struct EventFilter {
    kinds: Option<BTreeSet<ResourceKind>>,
    ids: Option<BTreeSet<String>>,
    no_status: bool,
}

impl EventFilter {
    fn from_subscription(sub: Subscription) -> Result<Self, String> {
        let kinds = sub
            .kinds
            .iter()
            .map(|k| {
                ResourceKind::ALL
                    .into_iter()
                    .find(|known| known.as_str() == k)
                    .ok_or_else(|| {
                        format!("unknown kind {:?}", k.chars().take(40).collect::<String>())
                    })
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self {
            kinds: (!kinds.is_empty()).then_some(kinds),
            ids: (!sub.ids.is_empty()).then(|| sub.ids.into_iter().collect()),
            no_status: !sub.status,
        })
    }

    fn admits(&self, event: &Relayed) -> bool {
        let (kind, id) = event.kind_and_id();
        let kind_ok = self.kinds.as_ref().is_none_or(|kinds| {
            kind.as_deref()
                .is_some_and(|k| kinds.iter().any(|known| known.as_str() == k))
        });
        let id_ok = self
            .ids
            .as_ref()
            .is_none_or(|ids| id.is_some_and(|id| ids.contains(&id)));
        kind_ok && id_ok
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ServerMessage<'a> {
    History {
        events: Vec<Relayed>,
    },
    Status {
        status: &'a serde_json::value::RawValue,
    },
}

/// The upgrade itself, served before the router: warp's `ws()` filter needs the raw request.
pub fn upgrade(
    state: ApiState,
    streams: Streams,
) -> impl warp::Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("api" / "ws")
        .and(warp::get())
        .and(warp::ws())
        .and_then(move |ws: Ws| {
            let (state, streams) = (state.clone(), streams.clone());
            async move {
                let resp = match streams.acquire() {
                    Ok(permit) => ws
                        .max_message_size(64 * 1024)
                        .on_upgrade(move |socket| session(state, socket, permit))
                        .into_response(),
                    Err(err) => err.into_response(),
                };
                Ok::<_, warp::Rejection>(resp)
            }
        })
}

#[utoipa::path(
    get,
    path = "/api/ws",
    tag = "events",
    summary = "WebSocket: queue status and ready/failed events",
    description = "Upgrade with `Connection: Upgrade`, `Upgrade: websocket`. The server sends \
        JSON text messages: `{\"type\":\"history\",\"events\":[...]}` once (the last 50 \
        ready/failed events), `{\"type\":\"status\",\"status\":{...}}` (the body of \
        `/api/queue/status`) at once and on every change, at most once a second, and \
        `{\"type\":\"ready\"|\"failed\",\"event\":{...}}`. The client may send \
        `{\"subscribe\":{\"kinds\":[\"match\"],\"ids\":[\"7930696222\"],\"status\":true}}` to \
        filter. A message that is not valid JSON or not a subscription closes the socket with \
        code 1003; a client too slow to read is closed with 1013. Without the upgrade headers \
        the answer is 426.",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol."),
        (status = 426, description = "Not a WebSocket upgrade request.", body = crate::http::bodies::ErrorBody),
        crate::http::openapi::responses::Unavailable
    )
)]
pub async fn get_ws(_: ApiState, _: Request) -> Result<Response, ApiError> {
    // Reached only by requests the upgrade filter did not take.
    Ok(json(
        StatusCode::UPGRADE_REQUIRED,
        &crate::http::bodies::ErrorBody {
            error: "this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket"
                .to_string(),
        },
    ))
}

/// One socket's life: a writer task drains the bounded queue into the socket; this task feeds
/// the queue from NATS and the status feed, and reads the client's subscriptions.
async fn session(state: ApiState, socket: WebSocket, _permit: OwnedSemaphorePermit) {
    let (mut sink, mut incoming) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(SOCKET_BUFFER);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let filter = Arc::new(RwLock::new(EventFilter::default()));
    let too_slow = Arc::new(AtomicBool::new(false));
    let send = |message: Message| match tx.try_send(message) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            too_slow.store(true, Ordering::Relaxed);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    };

    let nats = &state.pipeline.nats;
    let mut events = match results::follow(nats).await {
        Ok(events) => events,
        Err(_) => {
            let _ = tx.try_send(Message::close_with(
                1011u16,
                "could not subscribe to events",
            ));
            drop(tx);
            let _ = writer.await;
            return;
        }
    };
    let history = ServerMessage::History {
        events: state.recent.snapshot(),
    };
    if let Ok(text) = serde_json::to_string(&history) {
        send(Message::text(text));
    }
    let mut statuses = Box::pin(status_changes(
        state.queue_status.clone(),
        state.closing.clone(),
    ));
    let mut closing = state.closing.clone();
    let close = loop {
        if too_slow.load(Ordering::Relaxed) {
            break Some((
                TRY_AGAIN_LATER,
                "too slow: messages were waiting".to_string(),
            ));
        }
        tokio::select! {
            incoming = incoming.next() => match incoming {
                Some(Ok(message)) if message.is_text() => {
                    let text = message.to_str().unwrap_or_default();
                    match parse_subscription(text) {
                        Ok(new) => {
                            *filter.write().unwrap_or_else(PoisonError::into_inner) = new;
                        }
                        Err(why) => break Some((UNSUPPORTED_DATA, why)),
                    }
                }
                Some(Ok(message)) if message.is_binary() => {
                    break Some((UNSUPPORTED_DATA, "binary messages are not understood".to_string()));
                }
                Some(Ok(message)) if message.is_close() => break None,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            },
            event = events.next() => {
                let Some(event) = event else { break None };
                let Some(relayed) = Relayed::from_message(&event) else { continue };
                if filter.read().unwrap_or_else(PoisonError::into_inner).admits(&relayed)
                    && let Ok(text) = serde_json::to_string(&relayed)
                {
                    send(Message::text(text));
                }
            }
            status = statuses.next() => {
                let Some(body) = status else { break None };
                let wanted = !filter.read().unwrap_or_else(PoisonError::into_inner).no_status;
                if wanted
                    && let Ok(raw) = serde_json::value::RawValue::from_string(body)
                    && let Ok(text) = serde_json::to_string(&ServerMessage::Status { status: &raw })
                {
                    send(Message::text(text));
                }
            }
            _ = closing.wait_for(|c| *c) => break Some((1001, "the server is shutting down".to_string())),
        }
    };
    match close {
        Some((code, reason)) if code == TRY_AGAIN_LATER => {
            // The queue is full: the close frame could not wait its turn. Drop the connection.
            tracing::info!(%reason, "dropping a WebSocket client");
            writer.abort();
        }
        Some((code, reason)) => {
            tracing::debug!(code, %reason, "closing a WebSocket");
            let _ = tx.try_send(Message::close_with(code, reason));
            drop(tx);
            let _ = writer.await;
        }
        None => {
            drop(tx);
            let _ = writer.await;
        }
    }
}

fn parse_subscription(text: &str) -> Result<EventFilter, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let message: ClientMessage = serde_json::from_value(value)
        .map_err(|e| format!("not a subscription ({{\"subscribe\":{{...}}}}): {e}"))?;
    EventFilter::from_subscription(message.subscribe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed(kind: &str, id: &str) -> Relayed {
        let raw = format!("{{\"kind\":\"{kind}\",\"id\":\"{id}\"}}");
        Relayed {
            outcome: "ready",
            id: None,
            event_type: None,
            event: serde_json::value::RawValue::from_string(raw).unwrap(),
        }
    }

    #[test]
    fn subscriptions_filter_by_kind_and_id() {
        let all = parse_subscription(r#"{"subscribe":{}}"#).unwrap();
        assert!(all.admits(&relayed("match", "1")) && !all.no_status);
        let some =
            parse_subscription(r#"{"subscribe":{"kinds":["player"],"ids":["7"],"status":false}}"#)
                .unwrap();
        assert!(some.admits(&relayed("player", "7")));
        assert!(!some.admits(&relayed("player", "8")));
        assert!(!some.admits(&relayed("match", "7")));
        assert!(some.no_status);
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in [
            "not json",
            "{}",
            r#"{"subscribe":{"kinds":["hero"]}}"#,
            r#"{"subscribe":{},"extra":1}"#,
            "[1,2]",
        ] {
            let err = parse_subscription(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(
            parse_subscription("not json")
                .unwrap_err()
                .starts_with("not valid JSON")
        );
    }
}
