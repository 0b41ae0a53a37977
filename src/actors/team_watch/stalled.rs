//! Repairs stalled team imports. A match or player that a tracked, incomplete import still
//! waits for, with no claim (no job queued or running) for a grace ([`GRACE`] unless a test
//! shortens it), is claimed and queued again, and counted in `dota_import_repairs_total`.
//!
//! Nothing should need it: every child is claimed in the transaction that stores its parent.
//! It is the net under the few ways a child can still end invalidated or missing with no job,
//! which no request repairs (a POST of a ready import answers `ready` without looking at its
//! children): a fan-out that gave up queueing after its patience ran out, or, with
//! `--store nats`, a forced child dropped on a claim that a lagging copy still showed
//! (bench/soak.sh run 7). The grace is far longer than a claim takes to reach a replica, so
//! work in progress is never queued twice; a repair that meets a live shared claim is dropped.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::TeamWatch;
use crate::actors::cache_keeper::Child;
use crate::domain::{Fanout, Signature, TeamId};
use crate::metrics as m;
use crate::store::StoreError;
use crate::team::view::import_fanout;

/// How long a child must stay pending with no claim before it is queued again, by default.
pub const GRACE: Duration = Duration::from_secs(60);
/// Shortest gap between two looks at the incomplete imports' children (or the grace, if
/// shorter).
const SCAN_EVERY: Duration = Duration::from_secs(10);

/// Children seen pending with no claim, since when.
#[derive(Default)]
pub(super) struct Stalled {
    since: HashMap<Signature, Instant>,
    last_scan: Option<Instant>,
}

impl Stalled {
    /// Whether a scan is due (then the caller collects the incomplete imports).
    pub fn due(&self, now: Instant, grace: Duration) -> bool {
        self.last_scan
            .is_none_or(|last| now.duration_since(last) >= SCAN_EVERY.min(grace))
    }

    /// Looks at the children that tracked, incomplete imports wait for (`incomplete`: each
    /// import's team and its pending matches and players, `team::view::pending`) and returns
    /// those with no claim for the grace, each with the fan-out its import gives it.
    pub fn scan(
        &mut self,
        watch: &TeamWatch,
        incomplete: &[(TeamId, Vec<Signature>)],
        now: Instant,
    ) -> Result<Vec<Child>, StoreError> {
        self.last_scan = Some(now);
        let mut still = HashMap::new();
        let mut due = Vec::new();
        let mut taken = HashSet::new();
        for (team, waiting) in incomplete {
            let fanout = import_fanout(*team, watch.sides);
            for &sig in waiting {
                if watch.store.in_flight(&sig)?.is_some() || !taken.insert(sig) {
                    continue;
                }
                let first = self.since.get(&sig).copied().unwrap_or(now);
                if now.duration_since(first) < watch.repair_grace {
                    still.insert(sig, first);
                    continue;
                }
                let fanout = match sig {
                    Signature::Match(_) => fanout,
                    _ => Fanout::All,
                };
                due.push(Child {
                    signature: sig,
                    fanout,
                });
            }
        }
        // A child queued now starts a new grace if it stalls again.
        self.since = still;
        Ok(due)
    }
}

impl TeamWatch {
    /// Claims and queues `children` again, logging and counting each.
    pub(super) async fn repair(&self, children: Vec<Child>) {
        for child in &children {
            tracing::warn!(signature = %child.signature, grace_s = self.repair_grace.as_secs(),
                "a tracked import's child stayed pending with no job; queueing it again");
            metrics::counter!(m::IMPORT_REPAIRS, "kind" => child.signature.kind().as_str())
                .increment(1);
        }
        let jobs = match self.pipeline.stores.claim_children(children).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(%err, "could not claim a stalled import's children");
                return;
            }
        };
        if let Err(err) = self.pipeline.publish_claimed(jobs).await {
            tracing::warn!(%err, "could not queue a stalled import's children; trying again later");
        }
    }
}
