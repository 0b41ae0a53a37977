//! The endpoints: JSON records in the KV bucket `dota_webhooks` (key = endpoint ID), shared by
//! every instance on one NATS, and an in-memory copy of them kept in step by a KV watch, which
//! the dispatcher reads for every event (no round trip per event). Writes go to KV first (the
//! copy follows through the watch, and at once for this instance's own writes); changes of a
//! record (disable, failure time, rotation) are compare-and-swap updates, so two instances
//! changing one record never lose either change.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::WebhookError;
use super::model::{EndpointId, EndpointRecord};
use crate::bus::setup::with_retries;
use crate::bus::subjects::WEBHOOKS_BUCKET;
use crate::metrics as m;

/// Most endpoints (each event is checked against all of them; each one may hold up to
/// `deliver::PER_ENDPOINT` attempts in flight).
pub const MAX_ENDPOINTS: usize = 100;
/// Tries of one compare-and-swap update before giving up (another instance kept winning).
const CAS_TRIES: usize = 10;

type Cache = Arc<RwLock<BTreeMap<EndpointId, EndpointRecord>>>;

/// The endpoints, in KV and in memory.
#[derive(Clone)]
pub struct Registry {
    kv: kv::Store,
    cache: Cache,
}

impl Registry {
    /// Opens (or creates) the bucket and loads every endpoint.
    pub async fn open(js: &jetstream::Context, replicas: usize) -> Result<Self, WebhookError> {
        let config = kv::Config {
            bucket: WEBHOOKS_BUCKET.to_string(),
            description: "dota-orchestrator: webhook endpoints".into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        };
        // Get, else create: `create_or_update_key_value` cannot read nats-server 2.9's answer,
        // and a single node (`--store redb`) may run 2.9.
        let kv = with_retries("open the webhook bucket", || async {
            match js.get_key_value(WEBHOOKS_BUCKET).await {
                Ok(kv) => Ok(kv),
                Err(_) => js
                    .create_key_value(config.clone())
                    .await
                    .map_err(WebhookError::backend),
            }
        })
        .await?;
        let registry = Registry {
            kv,
            cache: Cache::default(),
        };
        for record in registry.load_all().await? {
            registry.remember(record);
        }
        Ok(registry)
    }

    async fn load_all(&self) -> Result<Vec<EndpointRecord>, WebhookError> {
        let mut keys = self.kv.keys().await.map_err(WebhookError::backend)?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(WebhookError::backend)?;
            if let Some(id) = EndpointId::parse(&key)
                && let Some((record, _)) = self.fetch(&id).await?
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn remember(&self, record: EndpointRecord) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.insert(record.id.clone(), record);
        gauges(&cache);
    }

    fn forget(&self, id: &EndpointId) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        cache.remove(id);
        gauges(&cache);
    }

    /// Every endpoint, from memory.
    pub fn all(&self) -> Vec<EndpointRecord> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.values().cloned().collect()
    }

    /// One endpoint, from memory.
    pub fn cached(&self, id: &EndpointId) -> Option<EndpointRecord> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.get(id).cloned()
    }

    /// One endpoint and its revision, from KV.
    pub async fn fetch(
        &self,
        id: &EndpointId,
    ) -> Result<Option<(EndpointRecord, u64)>, WebhookError> {
        let Some(entry) = self
            .kv
            .entry(id.as_str())
            .await
            .map_err(WebhookError::backend)?
        else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let record = serde_json::from_slice(&entry.value).map_err(WebhookError::backend)?;
        Ok(Some((record, entry.revision)))
    }

    /// Stores a new endpoint, unless [`MAX_ENDPOINTS`] exist.
    pub async fn create(&self, record: EndpointRecord) -> Result<(), WebhookError> {
        if self.all().len() >= MAX_ENDPOINTS {
            return Err(WebhookError::Invalid(format!(
                "at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
            )));
        }
        let value = serde_json::to_vec(&record).map_err(WebhookError::backend)?;
        self.kv
            .create(record.id.as_str(), value.into())
            .await
            .map_err(WebhookError::backend)?;
        self.remember(record);
        Ok(())
    }

    /// Deletes an endpoint; false when there was none.
    pub async fn delete(&self, id: &EndpointId) -> Result<bool, WebhookError> {
        if self.fetch(id).await?.is_none() {
            return Ok(false);
        }
        self.kv
            .delete(id.as_str())
            .await
            .map_err(WebhookError::backend)?;
        self.forget(id);
        Ok(true)
    }

    /// Applies `change` to the stored record (compare-and-swap, retried on a conflict);
    /// `change` returns false when there is nothing to write. `None` when there is no such
    /// endpoint.
    pub async fn update(
        &self,
        id: &EndpointId,
        change: impl Fn(&mut EndpointRecord) -> bool,
    ) -> Result<Option<EndpointRecord>, WebhookError> {
        for _ in 0..CAS_TRIES {
            let Some((mut record, revision)) = self.fetch(id).await? else {
                return Ok(None);
            };
            if !change(&mut record) {
                return Ok(Some(record));
            }
            let value = serde_json::to_vec(&record).map_err(WebhookError::backend)?;
            match self.kv.update(id.as_str(), value.into(), revision).await {
                Ok(_) => {
                    self.remember(record.clone());
                    return Ok(Some(record));
                }
                Err(err) => tracing::debug!(%err, "endpoint changed meanwhile; trying again"),
            }
        }
        Err(WebhookError::Backend(format!(
            "endpoint {id} kept changing; update given up"
        )))
    }

    /// Keeps the in-memory copy in step with KV (other instances' writes) until shutdown.
    pub async fn follow(self, stop: CancellationToken) {
        let mut changes = match self.kv.watch_all().await {
            Ok(changes) => changes,
            Err(err) => {
                tracing::error!(%err, "cannot watch the webhook endpoints; this instance's copy stays as loaded");
                return;
            }
        };
        loop {
            let change = tokio::select! {
                change = changes.next() => change,
                () = stop.cancelled() => return,
            };
            let Some(change) = change else { return };
            let Ok(entry) = change.inspect_err(|err| tracing::warn!(%err, "webhook watch")) else {
                continue;
            };
            let Some(id) = EndpointId::parse(&entry.key) else {
                continue;
            };
            if entry.operation == kv::Operation::Put {
                match serde_json::from_slice::<EndpointRecord>(&entry.value) {
                    Ok(record) => self.remember(record),
                    Err(err) => tracing::warn!(%err, %id, "unreadable endpoint record"),
                }
            } else {
                self.forget(&id);
            }
        }
    }
}

fn gauges(cache: &BTreeMap<EndpointId, EndpointRecord>) {
    let disabled = cache.values().filter(|r| r.disabled.is_some()).count();
    metrics::gauge!(m::WEBHOOK_ENDPOINTS).set(cache.len() as f64);
    metrics::gauge!(m::WEBHOOK_ENDPOINTS_DISABLED).set(disabled as f64);
}
