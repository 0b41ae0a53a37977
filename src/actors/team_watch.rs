//! Announces completed team imports. A team import is complete when every match of its league
//! and every player of those matches is ready or failed; then `dota.ready.team.<team>.<league>`
//! is published, once per stored team record (a forced re-import is announced again).
//!
//! Runs as a task beside the actors: it listens to `dota.ready.>` / `dota.failed.>` and also
//! re-checks on a short tick (a team record is stored without an event of its own). What was
//! announced is kept in redb, so a restart neither repeats nor forgets an announcement.
//!
//! It also repairs tracked imports that stalled: see [`stalled`].

mod stalled;

pub use stalled::GRACE as REPAIR_GRACE;

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::pipeline::Pipeline;
use crate::bus::results;
use crate::config::PlayerSides;
use crate::domain::{ResourceKind, Signature};
use crate::store::{Store, StoreError};
use crate::team::record::TeamRecord;
use crate::team::view::{pending, progress};
use stalled::Stalled;

/// Longest a completion waits to be noticed when no event arrives.
const TICK: Duration = Duration::from_secs(1);
/// Shortest gap between two checks while events stream in.
const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct TeamWatch {
    pub store: Store,
    pub pipeline: Pipeline,
    pub sides: PlayerSides,
    /// See [`REPAIR_GRACE`].
    pub repair_grace: Duration,
}

impl TeamWatch {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut events = match results::follow(&self.pipeline.nats).await {
            Ok(events) => Some(events),
            Err(err) => {
                tracing::warn!(%err, "team watch runs on its tick only");
                None
            }
        };
        let mut tick = tokio::time::interval(TICK);
        let mut stalled = Stalled::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                Some(_) = async {
                    match events.as_mut() {
                        Some(e) => e.next().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            if let Err(err) = self.check(&mut stalled).await {
                tracing::warn!(%err, "team completion check failed");
            }
            tokio::time::sleep(DEBOUNCE).await;
        }
    }

    /// Announces completed imports; when a stall scan is due, repairs tracked incomplete ones.
    async fn check(&self, stalled: &mut Stalled) -> Result<(), StoreError> {
        let now = tokio::time::Instant::now();
        let tracked: Option<HashSet<Signature>> = stalled
            .due(now, self.repair_grace)
            .then(|| self.store.tracked())
            .transpose()?
            .map(|t| t.into_iter().map(|(sig, _)| sig).collect());
        let mut incomplete = Vec::new();
        for sig in self.store.stored_of_kind(ResourceKind::Team)? {
            let Some(meta) = self.store.meta(&sig)? else {
                continue;
            };
            if meta.invalidated || self.store.announced(&sig)? == Some(meta.fetched_at_ms) {
                continue;
            }
            let Some(record) = self.record(&sig)? else {
                continue;
            };
            // A tracked import, when a stall scan is due: what it waits for, which is nothing
            // exactly when it is complete (one walk of the import, not two).
            let complete = if tracked.as_ref().is_some_and(|t| t.contains(&sig)) {
                let waiting = pending(&self.store, &record, self.sides)?;
                let complete = waiting.is_empty();
                if !complete {
                    incomplete.push((record.team_id, waiting));
                }
                complete
            } else {
                progress(&self.store, &record, self.sides)?.is_complete()
            };
            if !complete {
                continue;
            }
            // With `--store nats` every instance watches; the one whose shared record wins
            // announces, the others only note it.
            match self
                .pipeline
                .stores
                .mark_announced(sig, meta.fetched_at_ms)
                .await
            {
                Ok(true) => {
                    tracing::info!(signature = %sig, "team import complete");
                    self.pipeline.announce_ready(sig, meta.fetched_at_ms).await;
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(%err, signature = %sig, "could not record an announcement")
                }
            }
        }
        if tracked.is_some() {
            let due = stalled.scan(self, &incomplete, now)?;
            if !due.is_empty() {
                self.repair(due).await;
            }
        }
        Ok(())
    }

    fn record(&self, sig: &Signature) -> Result<Option<TeamRecord>, StoreError> {
        Ok(self
            .store
            .body(sig)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }
}
