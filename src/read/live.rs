//! What the live feeds for dashboards that should not poll send, kept apart from how they send
//! it: the queue status on every change, at most once a second ([`status_changes`], read by
//! `GET /api/queue/events` and the WebSocket), and the last [`RECENT_EVENTS`] ready/failed
//! events, kept so a page that opens shows what just happened instead of an empty feed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::queue_snapshot::{QueueSnapshots, QueueStatus};
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
        shutdown: CancellationToken,
    ) -> Result<(), async_nats::SubscribeError> {
        let mut messages = results::follow(&nats).await?;
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                () = shutdown.cancelled() => return Ok(()),
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
