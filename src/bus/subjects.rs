//! Every NATS subject, stream and consumer name the service uses, in one place.
//!
//! Work travels on `dota.jobs.<priority>.<kind>` (JetStream work-queue stream [`JOBS_STREAM`]);
//! results are announced on core NATS `dota.ready.<kind>.<id>` and `dota.failed.<kind>.<id>`.
//! Other programs subscribe to `dota.ready.>` / `dota.failed.>`.

use crate::domain::{Priority, ResourceKind, Signature};

/// The durable work-queue stream holding every queued job.
pub const JOBS_STREAM: &str = "DOTA_JOBS";
/// Subjects captured by [`JOBS_STREAM`].
pub const JOBS_SUBJECTS: &str = "dota.jobs.>";
/// Wildcard for every "resource is ready" event.
pub const READY_ALL: &str = "dota.ready.>";
/// Wildcard for every "resource failed permanently" event.
pub const FAILED_ALL: &str = "dota.failed.>";

/// Subject a job for `kind` at `priority` is published on.
pub fn job(priority: Priority, kind: ResourceKind) -> String {
    format!("dota.jobs.{}.{}", priority.as_str(), kind.as_str())
}

/// Durable consumer name for one (priority, kind) pair. Work-queue streams need consumers with
/// non-overlapping filters, which one consumer per subject guarantees.
pub fn consumer(priority: Priority, kind: ResourceKind) -> String {
    format!("fetch-{}-{}", kind.as_str(), priority.as_str())
}

/// Event subject announcing that `sig` is stored and fresh.
pub fn ready(sig: &Signature) -> String {
    format!("dota.ready.{}.{}", sig.kind().as_str(), sig.subject_id())
}

/// Event subject announcing that the last attempt at `sig` failed permanently.
pub fn failed(sig: &Signature) -> String {
    format!("dota.failed.{}.{}", sig.kind().as_str(), sig.subject_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LeagueId, MatchId, TeamId};

    #[test]
    fn subjects_follow_the_documented_shape() {
        let m = Signature::Match(MatchId::new(7).unwrap());
        assert_eq!(ready(&m), "dota.ready.match.7");
        assert_eq!(failed(&m), "dota.failed.match.7");
        let t = Signature::Team(TeamId::new(1).unwrap(), LeagueId::new(2).unwrap());
        assert_eq!(ready(&t), "dota.ready.team.1.2");
        assert_eq!(
            job(Priority::Interactive, ResourceKind::Match),
            "dota.jobs.interactive.match"
        );
    }
}
