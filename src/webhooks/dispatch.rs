//! From events to deliveries. A durable consumer on `DOTA_EVENTS` (one for all instances, so
//! each event is dispatched once) looks up the endpoints that want each event and publishes one
//! delivery per endpoint to the work-queue stream `DOTA_WEBHOOK_DELIVERIES`
//! (`dota.webhooks.deliver.<endpoint>`, `Nats-Msg-Id` = `<event id>/<endpoint>`, so a
//! re-dispatched event queues nothing twice), then acks the event. Each delivery then has a
//! retry schedule of its own (`deliver`), so a failing endpoint never holds up another's events.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use tokio_util::sync::CancellationToken;

use super::WebhookError;
use super::registry::Registry;
use crate::bus::setup::with_retries;
use crate::bus::subjects::{
    EVENTS_STREAM, WEBHOOK_DELIVERIES_STREAM, WEBHOOK_DELIVERIES_SUBJECTS,
    WEBHOOK_DISPATCH_CONSUMER, webhook_delivery,
};
use crate::domain::Signature;
use crate::events::Envelope;
use crate::events::envelope::H_MSG_ID;

/// Header of a delivery naming the event's own subject.
pub const H_EVENT_SUBJECT: &str = "Dota-Event-Subject";
/// Events handed to this consumer and not yet dispatched, across instances.
const MAX_ACK_PENDING: i64 = 256;
/// Dispatching one event is a few publishes; an instance that died holding one gives it up
/// after this.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// Longest time a queued delivery is kept: past the whole default schedule (27.6 h) with room.
const DELIVERY_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 3600);

/// Creates the delivery stream and the dispatch consumer.
pub async fn setup(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<consumer::PullConsumer, WebhookError> {
    let deliveries = stream::Config {
        name: WEBHOOK_DELIVERIES_STREAM.to_string(),
        subjects: vec![WEBHOOK_DELIVERIES_SUBJECTS.to_string()],
        retention: stream::RetentionPolicy::WorkQueue,
        max_age: DELIVERY_MAX_AGE,
        duplicate_window: Duration::from_secs(10 * 60),
        num_replicas: replicas,
        ..Default::default()
    };
    with_retries("create the webhook delivery stream", || {
        js.create_or_update_stream(deliveries.clone())
    })
    .await
    .map_err(WebhookError::backend)?;
    let config = consumer::pull::Config {
        durable_name: Some(WEBHOOK_DISPATCH_CONSUMER.to_string()),
        // Endpoints get what happens after they exist; a new stream starts dispatching now.
        deliver_policy: consumer::DeliverPolicy::New,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: MAX_ACK_PENDING,
        num_replicas: replicas,
        ..Default::default()
    };
    with_retries("create the webhook dispatch consumer", || async {
        js.get_stream(EVENTS_STREAM)
            .await
            .map_err(WebhookError::backend)?
            .get_or_create_consumer(WEBHOOK_DISPATCH_CONSUMER, config.clone())
            .await
            .map_err(WebhookError::backend)
    })
    .await
}

/// Dispatches events until shutdown.
pub async fn run(
    js: jetstream::Context,
    consumer: consumer::PullConsumer,
    registry: Registry,
    stop: CancellationToken,
) {
    super::each_message(&consumer, &stop, "webhook dispatch", |message| {
        dispatch(&js, &registry, message)
    })
    .await;
}

async fn dispatch(js: &jetstream::Context, registry: &Registry, message: jetstream::Message) {
    let envelope = message.headers.as_ref().and_then(Envelope::from_headers);
    let signature = envelope
        .as_ref()
        .and_then(|e| e.subject.parse::<Signature>().ok());
    let (Some(envelope), Some(signature)) = (envelope, signature) else {
        // Not ours, or from a version without headers: nothing to deliver.
        ack(&message, AckKind::Ack).await;
        return;
    };
    for endpoint in registry.all() {
        if !endpoint.wants(envelope.name, &signature) {
            continue;
        }
        let mut headers: HeaderMap = envelope.headers();
        headers.insert(
            H_MSG_ID,
            format!("{}/{}", envelope.id, endpoint.id).as_str(),
        );
        headers.insert(H_EVENT_SUBJECT, message.subject.as_str());
        let queued = async {
            js.publish_with_headers(
                webhook_delivery(endpoint.id.as_str()),
                headers,
                message.payload.clone(),
            )
            .await?
            .await
        };
        if let Err(err) = queued.await {
            tracing::warn!(%err, id = %envelope.id, "could not queue a webhook delivery; the event is dispatched again");
            ack(&message, AckKind::Nak(Some(Duration::from_secs(1)))).await;
            return;
        }
    }
    ack(&message, AckKind::Ack).await;
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(err) = message.ack_with(kind).await {
        tracing::warn!(%err, "could not acknowledge an event");
    }
}
