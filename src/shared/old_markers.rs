//! Markers a data bucket got before its markers had a TTL (versions before
//! `--data-marker-ttl-secs`: an eviction's purge, a cleared failure, an untracked import) would
//! stay forever. The upkeep's lease holder finds them (one headers-only read of every key's
//! last message) and writes each again with the marker TTL, compare-and-swap on the marker's
//! revision, so a key stored again meanwhile is left alone. Once a pass got through the whole
//! bucket, this instance does not look again (see `actors::store_bounds::shared`).

use std::time::Instant;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv;
use futures::StreamExt;

use super::{SharedError, SharedStore};

/// The outcome of one look for markers without a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldMarkers {
    /// Markers given the TTL.
    pub expiring: usize,
    /// Whether the whole bucket was read (else the deadline came first).
    pub complete: bool,
}

impl SharedStore {
    /// Gives every marker of the data bucket written without a TTL the bucket's marker TTL,
    /// until `deadline`.
    pub async fn expire_old_markers(&self, deadline: Instant) -> Result<OldMarkers, SharedError> {
        let op = "find markers without a TTL";
        let data = &self.inner.data;
        let mut found = OldMarkers {
            expiring: 0,
            complete: true,
        };
        let consumer = data
            .stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.inner.js.client().new_inbox(),
                description: Some("dota-orchestrator: markers without a TTL".to_string()),
                filter_subject: format!("{}>", data.prefix),
                headers_only: true,
                replay_policy: ReplayPolicy::Instant,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(SharedError::boxed(op))?;
        if consumer.cached_info().num_pending == 0 {
            return Ok(found);
        }
        let mut messages = consumer.messages().await.map_err(SharedError::boxed(op))?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Out of time, or the watch ended: the next pass looks again.
            let Ok(Some(message)) = tokio::time::timeout(left, messages.next()).await else {
                found.complete = false;
                return Ok(found);
            };
            let message = message.map_err(SharedError::boxed(op))?;
            let info = message
                .info()
                .map_err(|source| SharedError::Nats { op, source })?;
            let (revision, last) = (info.stream_sequence, info.pending == 0);
            if let Some(key) = message.subject.strip_prefix(data.prefix.as_str())
                && old_marker(message.headers.as_ref())
            {
                let key = key.to_string();
                if self.give_ttl(&key, revision).await? {
                    found.expiring += 1;
                }
            }
            if last {
                return Ok(found);
            }
        }
    }

    /// Writes the marker of `key` at `revision` again with the TTL; false when the key changed
    /// since.
    async fn give_ttl(&self, key: &str, revision: u64) -> Result<bool, SharedError> {
        let ttl = self.inner.tuning.data_marker_ttl;
        match self
            .inner
            .data
            .purge_expect_revision_with_ttl(key, revision, ttl)
            .await
        {
            Ok(()) => Ok(true),
            Err(err)
                if err.kind() == kv::UpdateErrorKind::WrongLastRevision
                    || super::is_cas_conflict(&err) =>
            {
                Ok(false)
            }
            Err(err) => Err(SharedError::boxed("give a marker its TTL")(err)),
        }
    }
}

/// A delete or purge marker our code wrote without a TTL (a server's own marker, left when a
/// message's TTL runs out, has a reason header and expires by itself).
fn old_marker(headers: Option<&async_nats::HeaderMap>) -> bool {
    let Some(headers) = headers else {
        return false;
    };
    let marker = headers
        .get("KV-Operation")
        .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
    marker && headers.get(async_nats::header::NATS_MESSAGE_TTL).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_marker_without_a_ttl_is_old() {
        let mut headers = async_nats::HeaderMap::new();
        assert!(!old_marker(None));
        assert!(!old_marker(Some(&headers)), "a put");
        headers.insert("KV-Operation", "PURGE");
        assert!(old_marker(Some(&headers)));
        headers.insert(async_nats::header::NATS_MESSAGE_TTL, "604800");
        assert!(!old_marker(Some(&headers)), "it has a TTL");
        let mut deleted = async_nats::HeaderMap::new();
        deleted.insert("KV-Operation", "DEL");
        assert!(old_marker(Some(&deleted)));
    }
}
