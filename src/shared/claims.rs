//! Claims shared by every instance: a claim is a KV entry `<sig>` in the claims bucket holding
//! the owner instance and the claimed [`Job`] (whose generation makes a stale job harmless),
//! written only if absent (an expected last-subject sequence) and under a lease: a per-key TTL
//! that its owner renews every third of the lease while the job is queued or running. So two
//! instances asking for the same resource at the same moment make one claim, one job and one
//! upstream call, and a dead owner's claims are free again one lease after it died.
//!
//! Claims are published here rather than through `kv::Store::create_with_ttl`: in async-nats
//! 0.51 that re-creates a key whose last entry is a delete or expiry marker without the TTL,
//! which would make such a claim immortal.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Held, SharedError, SharedStore, keys};
use crate::bus::subjects::CLAIMS_BUCKET;
use crate::domain::{Job, Signature};

/// Renewals sent at once by the lease keeper.
const RENEWALS_IN_FLIGHT: usize = 16;
/// Attempts at a compare-and-swap that keeps meeting concurrent writers.
const CAS_ATTEMPTS: usize = 5;

/// What the claims bucket holds for a resource being fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRecord {
    /// The instance renewing the lease.
    pub owner: String,
    pub job: Job,
}

/// The claim `entry` holds; `None` for a marker (the claim ended or its lease expired).
pub(crate) fn claim_of(entry: &kv::Entry) -> Result<Option<ClaimRecord>, SharedError> {
    if !super::is_live(entry) {
        return Ok(None);
    }
    serde_json::from_slice(&entry.value)
        .map(Some)
        .map_err(|source| SharedError::Decode {
            key: entry.key.clone(),
            source,
        })
}

/// Where a claim is read: any copy of the claims stream (a KV direct get), or its leader.
#[derive(Debug, Clone, Copy)]
enum Read {
    AnyCopy,
    Leader,
}

/// What [`SharedStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This instance now holds the claim for the job.
    Made,
    /// Another claim holds the resource.
    Held(ClaimRecord),
}

impl SharedStore {
    /// Writes a claim record for `sig` with the lease as its TTL, only if the last entry of
    /// its key has revision `expected` (0: the key never existed). `Ok(None)`: it has not.
    async fn write_claim(
        &self,
        sig: &Signature,
        value: Bytes,
        expected: u64,
    ) -> Result<Option<u64>, SharedError> {
        self.write_leased(&keys::of(sig), value, expected, self.inner.tuning.lease)
            .await
    }

    /// Writes `value` under `key` of the claims bucket with `ttl` as its TTL, only if the
    /// last entry of the key has revision `expected` (0: never existed). `Ok(None)`: it has
    /// not. Claims and the upkeep's lease are written so.
    pub(super) async fn write_leased(
        &self,
        key: &str,
        value: Bytes,
        expected: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, SharedError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            expected.to_string().as_str(),
        );
        headers.insert("Nats-TTL", format!("{}s", ttl.as_secs().max(1)).as_str());
        let subject = format!("$KV.{CLAIMS_BUCKET}.{key}");
        let sent = self
            .inner
            .js
            .publish_with_headers(subject, headers, value)
            .await
            .map_err(SharedError::boxed("publish a claim"))?;
        match sent.await {
            Ok(ack) => Ok(Some(ack.sequence)),
            Err(err)
                if err.kind() == PublishErrorKind::WrongLastSequence
                    || super::is_cas_conflict(&err) =>
            {
                Ok(None)
            }
            Err(err) => Err(SharedError::boxed("publish a claim")(err)),
        }
    }

    /// The last entry of `sig`'s claim key, live or a marker.
    async fn claim_entry(&self, sig: &Signature) -> Result<Option<kv::Entry>, SharedError> {
        self.inner
            .claims
            .entry(keys::of(sig))
            .await
            .map_err(SharedError::boxed("read a claim"))
    }

    /// The last entry of `sig`'s claim key as `read` finds it.
    async fn read_claim(
        &self,
        sig: &Signature,
        read: Read,
    ) -> Result<Option<kv::Entry>, SharedError> {
        match read {
            Read::AnyCopy => self.claim_entry(sig).await,
            Read::Leader => self.claim_entry_on_leader(sig).await,
        }
    }

    /// The last entry of `sig`'s claim key, live or a marker, as the stream's leader has it.
    async fn claim_entry_on_leader(
        &self,
        sig: &Signature,
    ) -> Result<Option<kv::Entry>, SharedError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let key = keys::of(sig);
        let subject = format!("$KV.{CLAIMS_BUCKET}.{key}");
        match self
            .inner
            .claims
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(message) => Ok(Some(kv::Entry {
                bucket: CLAIMS_BUCKET.to_string(),
                key,
                value: message.payload,
                revision: message.sequence,
                delta: 0,
                created: message.time,
                operation: super::resume::operation(Some(&message.headers)),
                seen_current: true,
            })),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(SharedError::boxed("read a claim from the leader")(err)),
        }
    }

    /// The live claim on `sig` and its revision.
    pub async fn current_claim(
        &self,
        sig: &Signature,
    ) -> Result<Option<(ClaimRecord, u64)>, SharedError> {
        self.current_claim_reading(sig, Read::AnyCopy).await
    }

    /// [`SharedStore::current_claim`] as `read` finds it.
    async fn current_claim_reading(
        &self,
        sig: &Signature,
        read: Read,
    ) -> Result<Option<(ClaimRecord, u64)>, SharedError> {
        let Some(entry) = self.read_claim(sig, read).await? else {
            return Ok(None);
        };
        Ok(claim_of(&entry)?.map(|record| (record, entry.revision)))
    }

    fn record(&self, job: &Job) -> Result<Bytes, SharedError> {
        let record = ClaimRecord {
            owner: self.inner.instance.clone(),
            job: job.clone(),
        };
        serde_json::to_vec(&record)
            .map(Bytes::from)
            .map_err(|source| SharedError::Decode {
                key: keys::of(&job.signature),
                source,
            })
    }

    fn hold(&self, job: &Job, revision: u64, value: Bytes) {
        self.held().insert(
            job.signature,
            Held {
                generation: job.generation,
                revision,
                value,
            },
        );
    }

    /// Claims `job.signature` for `job` unless a live claim holds it.
    pub async fn claim(&self, job: &Job) -> Result<Claim, SharedError> {
        self.claim_reading(job, Read::AnyCopy).await
    }

    /// [`SharedStore::claim`], reading the key from the claims stream's leader. A read that
    /// any copy answers (a KV direct get, and NATS prefers the node the client is connected
    /// to) may come from a copy that is behind and still shows a claim that has ended: a
    /// forced job, which no request queues again, asks the leader before it gives up.
    pub async fn claim_on_leader(&self, job: &Job) -> Result<Claim, SharedError> {
        self.claim_reading(job, Read::Leader).await
    }

    async fn claim_reading(&self, job: &Job, read: Read) -> Result<Claim, SharedError> {
        let value = self.record(job)?;
        for _ in 0..CAS_ATTEMPTS {
            let expected = match self.read_claim(&job.signature, read).await? {
                Some(entry) => match claim_of(&entry)? {
                    Some(record) => return Ok(Claim::Held(record)),
                    None => entry.revision,
                },
                None => 0,
            };
            if let Some(revision) = self
                .write_claim(&job.signature, value.clone(), expected)
                .await?
            {
                self.hold(job, revision, value);
                return Ok(Claim::Made);
            }
        }
        // Writers kept racing us; whoever won holds it now.
        match self.current_claim_reading(&job.signature, read).await? {
            Some((record, _)) => Ok(Claim::Held(record)),
            None => Ok(Claim::Held(ClaimRecord {
                owner: String::new(),
                job: job.clone(),
            })),
        }
    }

    /// Before running a delivered `job`: makes this instance the owner of its claim. True when
    /// the job is current: its claim (same generation) is now ours, or it had expired and was
    /// claimed again for it. False: the job is stale (another claim superseded it).
    pub async fn take_over(&self, job: &Job) -> Result<bool, SharedError> {
        let value = self.record(job)?;
        for _ in 0..CAS_ATTEMPTS {
            match self.current_claim(&job.signature).await? {
                Some((record, revision)) => {
                    if record.job.generation != job.generation {
                        return Ok(false);
                    }
                    if let Some(new) = self
                        .write_claim(&job.signature, value.clone(), revision)
                        .await?
                    {
                        self.hold(job, new, value);
                        return Ok(true);
                    }
                }
                None => match self.claim(job).await? {
                    Claim::Made => return Ok(true),
                    Claim::Held(record) => {
                        if record.job.generation != job.generation {
                            return Ok(false);
                        }
                    }
                },
            }
        }
        Ok(false)
    }

    /// Replaces the live claim of `holder` with one for `job` (the holder's job has nothing
    /// left to fetch, see `StorePort::confirm_claim`). False when the claim changed meanwhile.
    /// The holder's release then leaves the new claim alone, and its lease keeper lets it go.
    pub async fn supersede(&self, job: &Job, holder: &ClaimRecord) -> Result<bool, SharedError> {
        let Some((current, revision)) = self.current_claim(&job.signature).await? else {
            return Ok(false);
        };
        if current != *holder {
            return Ok(false);
        }
        let value = self.record(job)?;
        match self
            .write_claim(&job.signature, value.clone(), revision)
            .await?
        {
            Some(new) => {
                self.hold(job, new, value);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Ends the claim of `job` if it is still the current one (a store, a failure, or a job
    /// that could not be queued). The marker left behind expires after a while.
    pub async fn release(&self, job: &Job) -> Result<(), SharedError> {
        self.held().remove(&job.signature);
        for _ in 0..CAS_ATTEMPTS {
            let Some((record, revision)) = self.current_claim(&job.signature).await? else {
                return Ok(());
            };
            if record.job.generation != job.generation {
                return Ok(());
            }
            match self
                .inner
                .claims
                .purge_expect_revision_with_ttl(
                    keys::of(&job.signature),
                    revision,
                    super::MARKER_TTL,
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(err)
                    if err.kind() == kv::UpdateErrorKind::WrongLastRevision
                        || super::is_cas_conflict(&err) =>
                {
                    continue;
                }
                Err(err) => return Err(SharedError::boxed("release a claim")(err)),
            }
        }
        Ok(())
    }

    /// Claims this instance holds right now (for tests and the status page).
    pub fn held_claims(&self) -> usize {
        self.held().len()
    }

    /// Renews every claim this instance holds; a claim another instance took over (or that
    /// ended) is let go.
    async fn renew_leases(&self) {
        let held: Vec<(Signature, Held)> = self
            .held()
            .iter()
            .map(|(sig, held)| (*sig, held.clone()))
            .collect();
        let renewals = futures::stream::iter(held).map(|(sig, held)| async move {
            let renewed = self
                .write_claim(&sig, held.value.clone(), held.revision)
                .await;
            (sig, held, renewed)
        });
        let mut renewals = renewals.buffer_unordered(RENEWALS_IN_FLIGHT);
        let mut failed = 0usize;
        let mut last_err = None;
        while let Some((sig, before, renewed)) = renewals.next().await {
            let mut table = self.held();
            // Released or replaced meanwhile: the table already says what is current.
            let unchanged = table.get(&sig).is_some_and(|h| {
                h.generation == before.generation && h.revision == before.revision
            });
            if !unchanged {
                continue;
            }
            match renewed {
                Ok(Some(revision)) => {
                    if let Some(h) = table.get_mut(&sig) {
                        h.revision = revision;
                    }
                }
                Ok(None) => {
                    tracing::debug!(signature = %sig, "claim taken over or ended; no longer renewed");
                    table.remove(&sig);
                }
                Err(err) => {
                    failed += 1;
                    last_err = Some(err);
                }
            }
        }
        if let Some(err) = last_err {
            tracing::warn!(failed, %err, "could not renew the leases of some claims");
        }
    }

    /// Renews the leases of the claims this instance holds, every third of the lease, until
    /// shutdown.
    pub async fn keep_leases(self, shutdown: CancellationToken) {
        let every = (self.inner.tuning.lease / 3).max(Duration::from_millis(200));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.renew_leases().await;
        }
    }
}
