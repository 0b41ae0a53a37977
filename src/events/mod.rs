//! Result events for programs that react to them: every `dota.ready.*` / `dota.failed.*` event
//! is stored in the durable stream `DOTA_EVENTS` ([`stream`]), carries a CloudEvents 1.0
//! envelope in NATS headers ([`envelope`]), and is described by an AsyncAPI 3.0 document made
//! from the payload types themselves ([`asyncapi`]). The job pipeline and TeamWatch announce
//! through [`announce_ready`] / [`announce_failed`]; the webhook delivery (`crate::webhooks`)
//! consumes the stream. Layer: `bus` (uses bus, domain, metrics).

pub mod asyncapi;
pub mod envelope;
pub mod stream;

use async_nats::Client;
use bytes::Bytes;

pub use envelope::{Envelope, EventName, Outcome};
pub use stream::{EventsError, Retention};

use crate::bus::subjects;
use crate::bus::wire::{FailedEvent, ReadyEvent};
use crate::domain::Signature;
use crate::metrics as m;

/// Announces that `signature` is stored, as fetched at `fetched_at_ms`.
pub async fn announce_ready(nats: &Client, signature: Signature, fetched_at_ms: i64) {
    let event = ReadyEvent {
        kind: signature.kind().as_str().to_string(),
        id: signature.subject_id(),
        signature,
        fetched_at: body_time(fetched_at_ms),
    };
    let envelope = Envelope::new(Outcome::Ready, signature, fetched_at_ms);
    encode_and_announce(nats, subjects::ready(&signature), &envelope, &event).await;
}

/// Announces that the last attempt at `signature` failed permanently, now.
pub async fn announce_failed(nats: &Client, signature: Signature, error: String) {
    let failed_at_ms = chrono::Utc::now().timestamp_millis();
    let event = FailedEvent {
        kind: signature.kind().as_str().to_string(),
        id: signature.subject_id(),
        signature,
        error,
        failed_at: body_time(failed_at_ms),
    };
    let envelope = Envelope::new(Outcome::Failed, signature, failed_at_ms);
    encode_and_announce(nats, subjects::failed(&signature), &envelope, &event).await;
}

/// The bodies' time format, as before the envelope (`+00:00`, not `Z`).
fn body_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339()
}

async fn encode_and_announce<T: serde::Serialize>(
    nats: &Client,
    subject: String,
    envelope: &Envelope,
    event: &T,
) {
    match serde_json::to_vec(event) {
        Ok(payload) => announce(nats, subject, envelope, payload.into()).await,
        Err(err) => tracing::error!(%err, "could not encode event"),
    }
}

/// Publishes one event: into `DOTA_EVENTS` (de-duplicated by its ID) and so to every core
/// subscriber. Should the stream stay unreachable for a few seconds, the event still goes out
/// on core NATS, with its headers, and the failure is logged: a live subscriber misses
/// nothing, only a replay would.
pub async fn announce(nats: &Client, subject: String, envelope: &Envelope, payload: Bytes) {
    let js = async_nats::jetstream::new(nats.clone());
    let outcome = envelope.name.outcome.as_str();
    let result = match stream::publish(&js, subject.clone(), envelope, payload.clone()).await {
        Ok(false) => "stored",
        Ok(true) => "duplicate",
        Err(err) => {
            tracing::error!(%err, id = %envelope.id, "event not stored in the stream; publishing it on core NATS only");
            if let Err(err) = nats
                .publish_with_headers(subject, envelope.headers(), payload)
                .await
            {
                tracing::warn!(%err, "could not publish event");
            }
            "core_only"
        }
    };
    metrics::counter!(m::EVENTS_PUBLISHED, "outcome" => outcome, "result" => result).increment(1);
}
