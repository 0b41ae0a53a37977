//! The deliveries: a durable consumer on `DOTA_WEBHOOK_DELIVERIES` shared by every instance
//! (so each delivery is made by one), one task per delivery. An attempt ([`super::attempt`])
//! that fails is handed back with `Nak(delay)`, the delay being the schedule's next step
//! (`--webhook-retry-schedule`), or the receiver's `Retry-After` when that is later; JetStream
//! keeps the delivery (across restarts) until then, and its delivery count is the attempt
//! number. After the last step it is dropped (`Term`). A 410 disables the endpoint, as do 5
//! days of nothing but failures.
//!
//! Bounds: [`PER_ENDPOINT`] attempts in flight per endpoint and [`IN_FLIGHT`] per instance, so
//! a receiver that hangs (15 s each) holds only its own slots; deliveries waiting for a slot
//! send `Progress` so they are not handed to another instance meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::attempt::{Attempt, Outcome};
use super::model::{Disabled, EndpointId, EndpointRecord, rfc3339};
use super::{Webhooks, log};
use crate::bus::subjects::{WEBHOOK_DELIVER_CONSUMER, WEBHOOK_DELIVERIES_STREAM};
use crate::metrics::{self as m, TaskName};
use crate::tasks::Tasks;

/// Attempts in flight per endpoint on one instance.
pub const PER_ENDPOINT: usize = 8;
/// Attempts in flight on one instance, all endpoints together.
pub const IN_FLIGHT: usize = 64;
/// Deliveries handed out and not yet acked, all instances together.
const MAX_ACK_PENDING: i64 = 1024;
/// Longer than an attempt (15 s) with room; `Progress` renews it while a delivery waits.
const ACK_WAIT: Duration = Duration::from_secs(60);
const PROGRESS_EVERY: Duration = Duration::from_secs(20);
/// An endpoint failing for this long without one success is disabled.
pub const FAILING_LIMIT: Duration = Duration::from_secs(5 * 24 * 3600);
/// Longest `Retry-After` honoured (a receiver cannot park a delivery for longer).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Creates the delivery consumer (attempts are counted by its delivery count; two spare
/// deliveries cover an instance dying mid-attempt before the schedule's last step).
pub async fn consumer(
    js: &jetstream::Context,
    attempts: usize,
    replicas: usize,
) -> Result<consumer::PullConsumer, super::WebhookError> {
    let config = consumer::pull::Config {
        durable_name: Some(WEBHOOK_DELIVER_CONSUMER.to_string()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: i64::try_from(attempts + 2).unwrap_or(i64::MAX),
        max_ack_pending: MAX_ACK_PENDING,
        num_replicas: replicas,
        ..Default::default()
    };
    crate::bus::setup::with_retries("create the webhook delivery consumer", || async {
        js.get_stream(WEBHOOK_DELIVERIES_STREAM)
            .await
            .map_err(super::WebhookError::backend)?
            .get_or_create_consumer(WEBHOOK_DELIVER_CONSUMER, config.clone())
            .await
            .map_err(super::WebhookError::backend)
    })
    .await
}

/// Per-endpoint slots.
#[derive(Default)]
struct Slots(Mutex<HashMap<EndpointId, Arc<Semaphore>>>);

impl Slots {
    fn of(&self, id: &EndpointId) -> Arc<Semaphore> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_ENDPOINT)))
            .clone()
    }
}

/// Makes deliveries until shutdown.
pub async fn run(hooks: Webhooks, consumer: consumer::PullConsumer, tasks: Tasks) {
    let stop = tasks.token();
    let slots = Arc::new(Slots::default());
    let all = Arc::new(Semaphore::new(IN_FLIGHT));
    super::each_message(&consumer, &stop, "webhook delivery", |message| {
        let (hooks, slots, all) = (hooks.clone(), slots.clone(), all.clone());
        let stop = stop.clone();
        // At a stop an attempt in hand is dropped unacked: JetStream hands it out again after
        // the ack wait, with the same webhook-id.
        tasks.spawn(TaskName::WebhookAttempt, async move {
            tokio::select! {
                () = deliver(hooks, &slots, all, message) => {}
                () = stop.cancelled() => {}
            }
        });
        std::future::ready(())
    })
    .await;
}

/// Waits for `slots`, telling JetStream the delivery is still in hand every 20 s.
async fn wait_for_slot(
    message: &jetstream::Message,
    slots: Arc<Semaphore>,
) -> Option<OwnedSemaphorePermit> {
    let acquire = slots.acquire_owned();
    tokio::pin!(acquire);
    loop {
        tokio::select! {
            permit = &mut acquire => return permit.ok(),
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    }
}

async fn deliver(hooks: Webhooks, slots: &Slots, all: Arc<Semaphore>, message: jetstream::Message) {
    let endpoint = message
        .subject
        .rsplit('.')
        .next()
        .and_then(EndpointId::parse);
    let record = endpoint.as_ref().and_then(|id| hooks.registry.cached(id));
    let Some(record) = record.filter(|r| r.disabled.is_none()) else {
        // Deleted or disabled since it was queued.
        metrics::counter!(m::WEBHOOK_DELIVERIES, "outcome" => "dropped").increment(1);
        let _ = message.ack_with(AckKind::Term).await;
        return;
    };
    let Some(_own) = wait_for_slot(&message, slots.of(&record.id)).await else {
        return;
    };
    let Some(_any) = wait_for_slot(&message, all).await else {
        return;
    };
    let number = message.info().map(|i| i.delivered).unwrap_or(1).max(1);
    let number = u64::try_from(number).unwrap_or(1);
    let attempt = Attempt::new(&message, &record, number);
    let (result, took) = attempt.send(&hooks.client, hooks.allow_private).await;
    let label = settle(&hooks, &record, &message, number, &result).await;
    let entry = attempt.log_entry(&result, took, label);
    log::record(&hooks.js, &record.id, &entry).await;
}

/// Acks, naks or terms the delivery after an attempt and updates the endpoint's record;
/// returns the outcome label.
async fn settle(
    hooks: &Webhooks,
    record: &EndpointRecord,
    message: &jetstream::Message,
    number: u64,
    result: &Outcome,
) -> &'static str {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let label = match result {
        Outcome::Delivered { .. } => {
            let _ = message.ack_with(AckKind::Ack).await;
            if record.failing_since_ms.is_some() {
                change(hooks, &record.id, |r| r.failing_since_ms.take().is_some()).await;
            }
            "delivered"
        }
        Outcome::Gone => {
            let _ = message.ack_with(AckKind::Term).await;
            disable(hooks, &record.id, "gone", now_ms).await;
            "gone"
        }
        Outcome::Failed { retry_after, .. } | Outcome::Refused { retry_after, .. } => {
            failed(hooks, record, message, number, now_ms, *retry_after).await;
            if matches!(result, Outcome::Refused { .. }) {
                "refused"
            } else if usize::try_from(number + 1)
                .ok()
                .and_then(|n| hooks.schedule.before(n))
                .is_some()
            {
                "retrying"
            } else {
                "exhausted"
            }
        }
    };
    metrics::counter!(m::WEBHOOK_DELIVERIES, "outcome" => label).increment(1);
    label
}

/// Whether an endpoint that has failed since `failing_since_ms` (`None`: this is its first
/// failure) has failed for [`FAILING_LIMIT`] by `now_ms`, and so is disabled.
fn failing_too_long(failing_since_ms: Option<i64>, now_ms: i64) -> bool {
    let since = failing_since_ms.unwrap_or(now_ms);
    now_ms - since >= i64::try_from(FAILING_LIMIT.as_millis()).unwrap_or(i64::MAX)
}

/// After a failed attempt: the next step of the schedule (or `Retry-After`, when later), or
/// the end, or, after [`FAILING_LIMIT`] of failures, the endpoint's end.
async fn failed(
    hooks: &Webhooks,
    record: &EndpointRecord,
    message: &jetstream::Message,
    number: u64,
    now_ms: i64,
    retry_after: Option<Duration>,
) {
    if failing_too_long(record.failing_since_ms, now_ms) {
        let _ = message.ack_with(AckKind::Term).await;
        disable(hooks, &record.id, "failing", now_ms).await;
        return;
    }
    if record.failing_since_ms.is_none() {
        change(hooks, &record.id, |r| {
            let first = r.failing_since_ms.is_none();
            r.failing_since_ms.get_or_insert(now_ms);
            first
        })
        .await;
    }
    let next = usize::try_from(number + 1)
        .ok()
        .and_then(|n| hooks.schedule.before(n));
    let kind = match next {
        Some(step) => {
            let after = retry_after
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or_default();
            AckKind::Nak(Some(step.max(after)))
        }
        None => AckKind::Term,
    };
    let _ = message.ack_with(kind).await;
}

async fn disable(hooks: &Webhooks, id: &EndpointId, reason: &'static str, now_ms: i64) {
    tracing::warn!(endpoint = %id, reason, "webhook endpoint disabled");
    change(hooks, id, |r| {
        if r.disabled.is_some() {
            return false;
        }
        r.disabled = Some(Disabled {
            reason: reason.to_string(),
            at: rfc3339(now_ms),
        });
        true
    })
    .await;
}

async fn change(hooks: &Webhooks, id: &EndpointId, f: impl Fn(&mut EndpointRecord) -> bool) {
    if let Err(err) = hooks.registry.update(id, f).await {
        tracing::warn!(%err, endpoint = %id, "could not update the endpoint record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 24 * 3600 * 1000;

    #[test]
    fn an_endpoint_is_disabled_after_exactly_five_days_of_failures() {
        let since = 1_700_000_000_000;
        assert!(
            !failing_too_long(None, since),
            "a first failure starts the clock"
        );
        assert!(!failing_too_long(Some(since), since + DAY_MS));
        assert!(!failing_too_long(Some(since), since + 5 * DAY_MS - 1));
        assert!(failing_too_long(Some(since), since + 5 * DAY_MS));
        assert!(failing_too_long(Some(since), since + 6 * DAY_MS));
    }
}
