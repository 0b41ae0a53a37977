//! The delivery log: every attempt is one message on `dota.webhooks.log.<endpoint>` in the
//! stream `DOTA_WEBHOOK_LOG`, which keeps the last [`KEPT`] per endpoint (and nothing older
//! than a week), so `GET /api/webhooks/{id}/deliveries` shows the same from every instance and
//! no record is ever rewritten. Read with a short-lived consumer filtered to the endpoint.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

use super::WebhookError;
use super::model::{DeliveryAttempt, EndpointId};
use crate::bus::setup::with_retries;
use crate::bus::subjects::{WEBHOOK_LOG_STREAM, WEBHOOK_LOG_SUBJECTS, webhook_log};

/// Attempts kept per endpoint.
pub const KEPT: i64 = 100;
/// Age after which an attempt is dropped from the log.
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Creates or updates the log stream.
pub async fn setup(js: &jetstream::Context, replicas: usize) -> Result<(), WebhookError> {
    let config = stream::Config {
        name: WEBHOOK_LOG_STREAM.to_string(),
        subjects: vec![WEBHOOK_LOG_SUBJECTS.to_string()],
        max_messages_per_subject: KEPT,
        max_age: MAX_AGE,
        num_replicas: replicas,
        ..Default::default()
    };
    with_retries("create the webhook log", || {
        js.create_or_update_stream(config.clone())
    })
    .await
    .map_err(WebhookError::backend)?;
    Ok(())
}

/// Appends one attempt (a lost log line is logged, never fails a delivery).
pub async fn record(js: &jetstream::Context, endpoint: &EndpointId, attempt: &DeliveryAttempt) {
    let Ok(body) = serde_json::to_vec(attempt) else {
        return;
    };
    let sent = async {
        js.publish(webhook_log(endpoint.as_str()), body.into())
            .await?
            .await
    };
    if let Err(err) = sent.await {
        tracing::warn!(%err, %endpoint, "could not log a delivery attempt");
    }
}

/// The last attempts of `endpoint`, newest first.
pub async fn read(
    js: &jetstream::Context,
    endpoint: &EndpointId,
) -> Result<Vec<DeliveryAttempt>, WebhookError> {
    let stream = js
        .get_stream(WEBHOOK_LOG_STREAM)
        .await
        .map_err(WebhookError::backend)?;
    let reader = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: webhook_log(endpoint.as_str()),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(WebhookError::backend)?;
    let mut messages = reader
        .fetch()
        .max_messages(KEPT as usize)
        .messages()
        .await
        .map_err(WebhookError::backend)?;
    let mut out = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(WebhookError::backend)?;
        if let Ok(attempt) = serde_json::from_slice::<DeliveryAttempt>(&message.payload) {
            out.push(attempt);
        }
    }
    out.reverse();
    Ok(out)
}
