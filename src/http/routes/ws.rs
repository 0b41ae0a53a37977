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
//!
//! The upgrade is routed like any request (the router hands the handshake over in
//! `Request::upgrade`), and every socket takes a slot of the server's one stream cap
//! (`http::streams`, shared with the event streams).

use std::collections::BTreeSet;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::task::JoinHandle;
use warp::filters::ws::{Message, WebSocket};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::bus::results;
use crate::domain::ResourceKind;
use crate::http::ApiState;
use crate::http::bodies::ErrorBody;
use crate::http::reply::{ApiError, json};
use crate::http::router::Request;
use crate::http::streams::Streams;
use crate::read::live::{Relayed, status_changes};

/// Messages that may wait for one client before it is dropped as too slow.
pub const SOCKET_BUFFER: usize = 256;
/// Close code for a message the server cannot take (RFC 6455 "unsupported data").
const UNSUPPORTED_DATA: u16 = 1003;
/// Close code for a client dropped as too slow ("try again later").
const TRY_AGAIN_LATER: u16 = 1013;
/// Close code for a server that cannot serve the socket ("internal error").
const INTERNAL_ERROR: u16 = 1011;
/// Close code for a server that is going away (shutting down).
const GOING_AWAY: u16 = 1001;
/// Largest message a client may send (a subscription is a few hundred bytes).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

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
pub async fn get_ws(
    state: ApiState,
    mut req: Request,
    streams: Streams,
) -> Result<Response, ApiError> {
    let Some(upgrade) = req.upgrade.take() else {
        return Ok(json(
            StatusCode::UPGRADE_REQUIRED,
            &ErrorBody {
                error: "this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket"
                    .to_string(),
            },
        ));
    };
    let permit = streams.acquire()?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(state, socket, permit))
        .into_response())
}

/// One socket's life: a writer task drains the bounded queue into the socket; this task feeds
/// the queue from NATS and the status feed, and reads the client's subscriptions.
async fn session(state: ApiState, socket: WebSocket, _permit: OwnedSemaphorePermit) {
    let (sink, incoming) = socket.split();
    let mut outbox = Outbox::open(sink);
    let events = match results::follow(&state.pipeline.nats).await {
        Ok(events) => events,
        Err(_) => {
            let reason = "could not subscribe to events".to_string();
            return outbox.finish(Some((INTERNAL_ERROR, reason))).await;
        }
    };
    outbox.send_json(&ServerMessage::History {
        events: state.recent.snapshot(),
    });
    let close = relay(&state, &mut outbox, incoming, events).await;
    outbox.finish(close).await;
}

/// Feeds `outbox` with the events and statuses the client's subscription admits, and reads the
/// client's messages, until the socket ends, the server closes or the client is too slow.
/// Returns the close frame to send (code and reason), if any.
async fn relay(
    state: &ApiState,
    outbox: &mut Outbox,
    mut incoming: SplitStream<WebSocket>,
    mut events: impl Stream<Item = async_nats::Message> + Unpin,
) -> Option<(u16, String)> {
    let mut filter = EventFilter::default();
    let mut statuses = Box::pin(status_changes(
        state.queue_status.clone(),
        state.closing.clone(),
    ));
    let mut closing = state.closing.clone();
    loop {
        if outbox.too_slow {
            let reason = "too slow: messages were waiting".to_string();
            return Some((TRY_AGAIN_LATER, reason));
        }
        tokio::select! {
            incoming = incoming.next() => match incoming {
                Some(Ok(message)) if message.is_text() => {
                    match parse_subscription(message.to_str().unwrap_or_default()) {
                        Ok(new) => filter = new,
                        Err(why) => return Some((UNSUPPORTED_DATA, why)),
                    }
                }
                Some(Ok(message)) if message.is_binary() => {
                    return Some((UNSUPPORTED_DATA, "binary messages are not understood".to_string()));
                }
                Some(Ok(message)) if message.is_close() => return None,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            },
            event = events.next() => {
                let event = event?;
                if let Some(relayed) = Relayed::from_message(&event)
                    && filter.admits(&relayed)
                {
                    outbox.send_json(&relayed);
                }
            }
            status = statuses.next() => {
                let body = status?;
                if !filter.no_status
                    && let Ok(raw) = serde_json::value::RawValue::from_string(body)
                {
                    outbox.send_json(&ServerMessage::Status { status: &raw });
                }
            }
            _ = closing.wait_for(|c| *c) => {
                return Some((GOING_AWAY, "the server is shutting down".to_string()));
            }
        }
    }
}

/// The sending side of one socket: a queue of at most [`SOCKET_BUFFER`] messages that a writer
/// task drains into the socket. Never waits on the client: a full queue marks it too slow.
struct Outbox {
    tx: mpsc::Sender<Message>,
    writer: JoinHandle<()>,
    too_slow: bool,
}

impl Outbox {
    fn open(mut sink: SplitSink<WebSocket, Message>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Message>(SOCKET_BUFFER);
        let writer = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        Self {
            tx,
            writer,
            too_slow: false,
        }
    }

    /// Queues `value` as a JSON text message.
    fn send_json(&mut self, value: &impl Serialize) {
        let Ok(text) = serde_json::to_string(value) else {
            return;
        };
        match self.tx.try_send(Message::text(text)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.too_slow = true,
        }
    }

    /// Ends the socket: after the queued messages and the close frame `close` (code, reason),
    /// or at once for a client too slow to read (its queue is full, so a close frame could not
    /// wait its turn).
    async fn finish(self, close: Option<(u16, String)>) {
        let Self { tx, writer, .. } = self;
        match close {
            Some((code, reason)) if code == TRY_AGAIN_LATER => {
                tracing::info!(%reason, "dropping a WebSocket client");
                writer.abort();
                return;
            }
            Some((code, reason)) => {
                tracing::debug!(code, %reason, "closing a WebSocket");
                let _ = tx.try_send(Message::close_with(code, reason));
            }
            None => {}
        }
        drop(tx);
        if let Err(err) = writer.await {
            tracing::warn!(%err, "a WebSocket writer failed");
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
