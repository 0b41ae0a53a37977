//! Result events for programs that react to them: every `dota.ready.*` / `dota.failed.*` event
//! is stored in the durable stream `DOTA_EVENTS` ([`stream`]), carries a CloudEvents 1.0
//! envelope in NATS headers ([`envelope`]), and is described by an AsyncAPI 3.0 document made
//! from the payload types themselves ([`asyncapi`]). The job pipeline and TeamWatch announce
//! through [`announce`]; the webhook delivery (`crate::webhooks`) consumes the stream.
//! Layer: `bus` (uses bus, domain, config, metrics).

pub mod asyncapi;
pub mod envelope;
pub mod stream;

use async_nats::Client;
use bytes::Bytes;

pub use envelope::{Envelope, EventName, Outcome};
pub use stream::EventsError;

use crate::metrics as m;

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
