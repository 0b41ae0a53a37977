//! Signed webhooks (Standard Webhooks v1) for receivers that do not speak NATS. Endpoints live
//! in a KV bucket ([`registry`]); a durable consumer on `DOTA_EVENTS` turns each event into one
//! delivery per interested endpoint ([`dispatch`]); a second durable consumer makes the signed
//! POSTs on a retry schedule ([`deliver`], [`attempt`], [`signing`]), logging every attempt
//! ([`log`]). URLs are held to public addresses ([`guard`]). Both consumers are shared by every
//! instance on one NATS, so each delivery is made once and survives restarts.
//! [`Webhooks`] is the handle `http::webhooks` manages endpoints through.
//! Layer 5: uses events, bus, domain, config and metrics.

pub mod attempt;
pub mod deliver;
pub mod dispatch;
pub mod guard;
pub mod log;
pub mod model;
pub mod registry;
pub mod signing;

use std::time::Duration;

use async_nats::jetstream;

use crate::bus::server_version::{MIN_SHARED_STORE, ServerVersion};
use crate::config::{EventSettings, RetrySchedule};
use crate::metrics::TaskName;
use crate::tasks::Tasks;
use model::{
    CreateWebhook, DeliveryAttempt, EndpointId, EndpointRecord, StoredSecret, WebhookCreated,
    rfc3339,
};
use registry::Registry;

/// How long the previous secret keeps signing after a rotation, so receivers can switch over.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// What managing endpoints or setting up delivery can fail with, by the answer it forces.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A bad request: the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("no such webhook endpoint")]
    NotFound,
    /// NATS (KV, streams) failed.
    #[error("webhook storage: {0}")]
    Backend(String),
}

impl WebhookError {
    pub fn backend(err: impl std::fmt::Display) -> Self {
        WebhookError::Backend(err.to_string())
    }
}

/// The webhook side of one instance: the registry, the delivery client and settings.
#[derive(Clone)]
pub struct Webhooks {
    pub registry: Registry,
    js: jetstream::Context,
    client: reqwest::Client,
    allow_private: bool,
    schedule: RetrySchedule,
}

impl Webhooks {
    /// Sets up the bucket, streams and consumers and starts the dispatcher, the deliverer and
    /// the registry watch on `tasks`; they end when its token is cancelled.
    pub async fn start(
        nats: &async_nats::Client,
        settings: &EventSettings,
        replicas: usize,
        tasks: &Tasks,
    ) -> Result<Self, WebhookError> {
        // nats-server 2.9 (Debian's) answers KV set-up in a form this client cannot read.
        let found = nats.server_info().version;
        if !found
            .parse::<ServerVersion>()
            .is_ok_and(|v| v >= MIN_SHARED_STORE)
        {
            return Err(WebhookError::Backend(format!(
                "nats-server {found} is too old for webhooks ({MIN_SHARED_STORE} or newer)"
            )));
        }
        let js = jetstream::new(nats.clone());
        let registry = Registry::open(&js, replicas).await?;
        log::setup(&js, replicas).await?;
        let dispatcher = dispatch::setup(&js, replicas).await?;
        let schedule = settings.webhook_retry_schedule.clone();
        let deliverer = deliver::consumer(&js, schedule.attempts(), replicas).await?;
        let hooks = Webhooks {
            registry: registry.clone(),
            js: js.clone(),
            client: attempt::client(settings.webhook_allow_private)
                .map_err(WebhookError::backend)?,
            allow_private: settings.webhook_allow_private,
            schedule,
        };
        let (watch, token) = (registry.clone(), tasks.token());
        tasks.spawn_restarting(TaskName::WebhookRegistry, move || {
            watch.clone().follow(token.clone())
        });
        let token = tasks.token();
        tasks.spawn_restarting(TaskName::WebhookDispatch, move || {
            dispatch::run(
                js.clone(),
                dispatcher.clone(),
                registry.clone(),
                token.clone(),
            )
        });
        let (deliverer_hooks, spawner) = (hooks.clone(), tasks.clone());
        tasks.spawn_restarting(TaskName::WebhookDelivery, move || {
            deliver::run(deliverer_hooks.clone(), deliverer.clone(), spawner.clone())
        });
        Ok(hooks)
    }

    /// Creates an endpoint; its secret is in the answer and nowhere else the API shows.
    pub async fn create(&self, request: CreateWebhook) -> Result<WebhookCreated, WebhookError> {
        let new = request.parse().map_err(WebhookError::Invalid)?;
        guard::check_url(&new.url, self.allow_private)
            .await
            .map_err(|e| WebhookError::Invalid(e.to_string()))?;
        let secret = signing::new_secret();
        let record = EndpointRecord {
            id: EndpointId::generate(),
            url: new.url.to_string(),
            events: new.events.iter().map(|e| e.as_string()).collect(),
            filter: new.filter,
            created_at: rfc3339(chrono::Utc::now().timestamp_millis()),
            secrets: vec![StoredSecret {
                secret: secret.clone(),
                expires_at_ms: None,
            }],
            disabled: None,
            failing_since_ms: None,
        };
        let id = record.id.to_string();
        self.registry.create(record).await?;
        Ok(WebhookCreated { id, secret })
    }

    /// Every endpoint.
    pub fn list(&self) -> Vec<EndpointRecord> {
        self.registry.all()
    }

    /// One endpoint, as stored now.
    pub async fn get(&self, id: &str) -> Result<EndpointRecord, WebhookError> {
        let id = EndpointId::parse(id).ok_or(WebhookError::NotFound)?;
        let found = self.registry.fetch(&id).await?;
        found.map(|(r, _)| r).ok_or(WebhookError::NotFound)
    }

    /// Deletes an endpoint and the deliveries still queued for it.
    pub async fn delete(&self, id: &str) -> Result<(), WebhookError> {
        let id = EndpointId::parse(id).ok_or(WebhookError::NotFound)?;
        if !self.registry.delete(&id).await? {
            return Err(WebhookError::NotFound);
        }
        let queued = async {
            let stream = self
                .js
                .get_stream(crate::bus::subjects::WEBHOOK_DELIVERIES_STREAM)
                .await
                .map_err(WebhookError::backend)?;
            stream
                .purge()
                .filter(crate::bus::subjects::webhook_delivery(id.as_str()))
                .await
                .map_err(WebhookError::backend)
        };
        if let Err(err) = queued.await {
            tracing::warn!(%err, endpoint = %id, "queued deliveries of a deleted endpoint stay until dropped at delivery");
        }
        Ok(())
    }

    /// A new secret; the previous one keeps signing for [`ROTATION_OVERLAP`].
    pub async fn rotate(&self, id: &str) -> Result<WebhookCreated, WebhookError> {
        let id = EndpointId::parse(id).ok_or(WebhookError::NotFound)?;
        let secret = signing::new_secret();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let until = now_ms + i64::try_from(ROTATION_OVERLAP.as_millis()).unwrap_or(i64::MAX);
        self.registry
            .update(&id, |record| {
                record
                    .secrets
                    .retain(|s| s.expires_at_ms.is_none_or(|at| at > now_ms));
                for old in &mut record.secrets {
                    old.expires_at_ms = Some(old.expires_at_ms.unwrap_or(until).min(until));
                }
                record.secrets.push(StoredSecret {
                    secret: secret.clone(),
                    expires_at_ms: None,
                });
                true
            })
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok(WebhookCreated {
            id: id.to_string(),
            secret,
        })
    }

    /// The last attempts, newest first.
    pub async fn deliveries(&self, id: &str) -> Result<Vec<DeliveryAttempt>, WebhookError> {
        let id = EndpointId::parse(id).ok_or(WebhookError::NotFound)?;
        if self.registry.fetch(&id).await?.is_none() {
            return Err(WebhookError::NotFound);
        }
        log::read(&self.js, &id).await
    }
}

/// Hands every message of a durable pull consumer to `handle`, one at a time, until `stop` is
/// cancelled; a failed pull is logged (as `what`) and tried again a second later.
async fn each_message<F, Fut>(
    consumer: &jetstream::consumer::PullConsumer,
    stop: &tokio_util::sync::CancellationToken,
    what: &str,
    mut handle: F,
) where
    F: FnMut(jetstream::Message) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    while !stop.is_cancelled() {
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(%err, what, "cannot pull; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                () = stop.cancelled() => return,
            };
            match message {
                Some(Ok(message)) => handle(message).await,
                Some(Err(err)) => tracing::warn!(%err, what, "pull failed"),
                None => break,
            }
        }
    }
}
