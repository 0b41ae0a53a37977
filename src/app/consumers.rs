//! Start-up step: what event consumers get. The durable event stream `DOTA_EVENTS`, then the
//! webhook endpoints and their delivery, whose tasks run on the supervisor's [`Tasks`].
//! Webhooks need a KV bucket that nats-server 2.9 (Debian's, enough for one node otherwise)
//! cannot give this client: on a server older than 2.12 the service runs without them, says
//! so, and the webhook API answers 503.

use super::AppError;
use crate::config::Settings;
use crate::tasks::Tasks;
use crate::webhooks::Webhooks;

/// Sets up `DOTA_EVENTS` and starts the webhooks (`None` where they cannot run).
pub(super) async fn start(
    settings: &Settings,
    nats: &async_nats::Client,
    tasks: &Tasks,
) -> Result<Option<Webhooks>, AppError> {
    let replicas = usize::from(settings.nats_replicas);
    let js = async_nats::jetstream::new(nats.clone());
    let retention = crate::events::Retention {
        max_age: settings.events.retention,
        max_bytes: settings.events.max_bytes,
    };
    crate::events::stream::setup(&js, retention, replicas).await?;
    match Webhooks::start(nats, &settings.events, replicas, tasks).await {
        Ok(hooks) => Ok(Some(hooks)),
        Err(err) => {
            tracing::error!(%err, "webhooks are off");
            Ok(None)
        }
    }
}
