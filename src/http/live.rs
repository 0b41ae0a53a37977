//! Live feeds for dashboards that should not poll: `GET /api/queue/events` (Server-Sent Events
//! carrying the queue status on every change, at most once a second), the status feed the
//! WebSocket (`super::ws`) shares, and the last [`RECENT_EVENTS`] ready/failed events, kept so
//! a page that opens shows what just happened instead of an empty feed.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use warp::reply::{Reply, Response};
use warp::sse::Event;

use super::ApiState;
use super::events::{KEEP_ALIVE, Streams};
use super::openapi::responses::Unavailable;
use super::queue_snapshot::QueueSnapshots;
use super::reply::ApiError;
use super::router::Request;
use super::status::QueueStatus;
use crate::bus::results;

/// Ready/failed events kept for a page that opens.
pub const RECENT_EVENTS: usize = 50;
/// Shortest time between two status frames of one stream.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);

/// One relayed result event: its outcome (`ready`, `failed`), its CloudEvents `ce-id` and
/// `ce-type` (as `id` and `eventType`, when the message carried them) and the event JSON as
/// published.
#[derive(Debug, Clone, Serialize)]
pub struct Relayed {
    #[serde(rename = "type")]
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "eventType", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    pub event: Box<serde_json::value::RawValue>,
}

impl Relayed {
    /// Reads a NATS message on `dota.ready.>` / `dota.failed.>`; `None` for anything else.
    pub fn from_message(message: &async_nats::Message) -> Option<Self> {
        let outcome = if message.subject.starts_with("dota.ready.") {
            "ready"
        } else if message.subject.starts_with("dota.failed.") {
            "failed"
        } else {
            return None;
        };
        let text = std::str::from_utf8(&message.payload).ok()?;
        let event = serde_json::value::RawValue::from_string(text.to_string()).ok()?;
        let envelope = message
            .headers
            .as_ref()
            .and_then(crate::events::Envelope::from_headers);
        Some(Self {
            outcome,
            id: envelope.as_ref().map(|e| e.id.clone()),
            event_type: envelope.map(|e| e.name.ce_type()),
            event,
        })
    }

    /// The relayed event's `kind` and `id` fields.
    pub fn kind_and_id(&self) -> (Option<String>, Option<String>) {
        #[derive(serde::Deserialize)]
        struct KindId {
            kind: Option<String>,
            id: Option<String>,
        }
        match serde_json::from_str::<KindId>(self.event.get()) {
            Ok(k) => (k.kind, k.id),
            Err(_) => (None, None),
        }
    }
}

/// The last [`RECENT_EVENTS`] relayed events, oldest first. Cheap to clone.
#[derive(Clone, Default)]
pub struct RecentEvents(Arc<Mutex<VecDeque<Relayed>>>);

impl RecentEvents {
    pub fn push(&self, event: Relayed) {
        let mut events = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() == RECENT_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }

    pub fn snapshot(&self) -> Vec<Relayed> {
        let events = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().cloned().collect()
    }

    /// Keeps the list filled from NATS until `shutdown` turns true.
    pub async fn follow(
        self,
        nats: async_nats::Client,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), async_nats::SubscribeError> {
        let mut messages = results::follow(&nats).await?;
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            };
            let Some(message) = message else {
                return Ok(());
            };
            if let Some(event) = Relayed::from_message(&message) {
                self.push(event);
            }
        }
    }
}

/// The queue status body of the latest snapshot, or `None` while none is available.
pub fn status_json(snapshots: &QueueSnapshots) -> Option<(String, String)> {
    let snapshot = snapshots.latest().ok()?;
    let services = serde_json::to_string(&snapshot.services).ok()?;
    Some((
        services,
        serde_json::to_string(&QueueStatus::of(&snapshot)).ok()?,
    ))
}

/// Status bodies as they change: the current one at once, then one whenever the services'
/// state differs from the last one sent (a new `asOf` alone is no change), never two within
/// [`STATUS_EVERY`]. Ends when the collector stops or `closing` turns true.
pub fn status_changes(
    snapshots: QueueSnapshots,
    closing: watch::Receiver<bool>,
) -> impl futures::Stream<Item = String> + Send + 'static {
    futures::stream::unfold(
        (snapshots, closing, None::<String>, true),
        |(mut snapshots, mut closing, mut last, first)| async move {
            if !first {
                tokio::time::sleep(STATUS_EVERY).await;
            }
            loop {
                if let Some((services, body)) = status_json(&snapshots)
                    && last.as_deref() != Some(services.as_str())
                {
                    last = Some(services);
                    return Some((body, (snapshots, closing, last, false)));
                }
                tokio::select! {
                    changed = snapshots.changed() => if !changed { return None },
                    _ = closing.wait_for(|c| *c) => return None,
                }
            }
        },
    )
}

#[utoipa::path(
    get,
    path = "/api/queue/events",
    tag = "events",
    summary = "Server-sent queue status, on every change",
    description = "A `text/event-stream` of `status` events, each carrying the body \
        `/api/queue/status` would answer: one at once, then one whenever a service's queue, \
        work or budget changes, at most one a second.",
    responses(
        (status = 200, description = "The status stream; it stays open.", body = String,
            content_type = "text/event-stream",
            example = "event: status\ndata: {\"asOf\":\"2026-11-30T03:00:00.000Z\",\"services\":{},\"timestamp\":\"2026-11-30T03:00:00.100+00:00\"}\n\n"),
        Unavailable
    )
)]
pub async fn get_queue_events(
    state: ApiState,
    req: Request,
    streams: Streams,
) -> Result<Response, ApiError> {
    if !req.query()?.is_empty() {
        return Err(ApiError::BadRequest(
            "this stream takes no query parameters".to_string(),
        ));
    }
    let permit = streams.acquire()?;
    let frames =
        status_changes(state.queue_status.clone(), state.closing.clone()).map(move |body| {
            let _held = &permit;
            Ok::<_, Infallible>(Event::default().event("status").data(body))
        });
    let stream = warp::sse::keep_alive().interval(KEEP_ALIVE).stream(frames);
    Ok(warp::sse::reply(stream).into_response())
}
