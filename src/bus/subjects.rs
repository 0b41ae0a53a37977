//! Every NATS subject, stream and consumer name the service uses, in one place.
//!
//! Work travels on `dota.jobs.<priority>.<kind>` (JetStream work-queue stream [`JOBS_STREAM`]);
//! results are announced on `dota.ready.<kind>.<id>` and `dota.failed.<kind>.<id>`, kept in the
//! stream [`EVENTS_STREAM`]. Other programs subscribe to `dota.ready.>` / `dota.failed.>` or
//! make a durable consumer on the stream. Webhook deliveries travel on
//! `dota.webhooks.deliver.<endpoint>` and their attempts are logged on `dota.webhooks.log.<endpoint>`.
//!
//! An instance with its own redb file on a shared NATS server keeps its work in a queue of its
//! own ([`QueueNames::private`]): `dota.q.<instance>.<priority>.<kind>` in stream
//! `DOTA_JOBS_<INSTANCE>`, so no other instance can take (and, lacking the claim, drop) its jobs.
//!
//! The shared rate budget (`upstream::budget::shared`) counts calls in JetStream counters on
//! `dota.budget.<service>.<identity>.minute.<unix-minute>` and `.day.<yyyymmdd>` (stream
//! [`BUDGET_STREAM`]); live instances keep a heartbeat key in KV bucket [`INSTANCES_BUCKET`].

use crate::domain::{Priority, ResourceKind, Signature};

/// The durable work-queue stream holding every queued job.
pub const JOBS_STREAM: &str = "DOTA_JOBS";
/// Subjects captured by [`JOBS_STREAM`].
pub const JOBS_SUBJECTS: &str = "dota.jobs.>";
/// Wildcard for every "resource is ready" event.
pub const READY_ALL: &str = "dota.ready.>";
/// Wildcard for every "resource failed permanently" event.
pub const FAILED_ALL: &str = "dota.failed.>";

/// The durable stream of every ready and failed event (limits retention, see `events::stream`).
pub const EVENTS_STREAM: &str = "DOTA_EVENTS";
/// KV bucket of webhook endpoints (shared by every instance on one NATS).
pub const WEBHOOKS_BUCKET: &str = "dota_webhooks";
/// Work-queue stream of webhook deliveries, one message per event and endpoint.
pub const WEBHOOK_DELIVERIES_STREAM: &str = "DOTA_WEBHOOK_DELIVERIES";
/// Subjects of [`WEBHOOK_DELIVERIES_STREAM`]: `dota.webhooks.deliver.<endpoint>`.
pub const WEBHOOK_DELIVERIES_SUBJECTS: &str = "dota.webhooks.deliver.>";
/// Stream of the last delivery attempts per endpoint: `dota.webhooks.log.<endpoint>`.
pub const WEBHOOK_LOG_STREAM: &str = "DOTA_WEBHOOK_LOG";
/// Subjects of [`WEBHOOK_LOG_STREAM`].
pub const WEBHOOK_LOG_SUBJECTS: &str = "dota.webhooks.log.>";
/// Durable consumer on [`EVENTS_STREAM`] that turns events into deliveries.
pub const WEBHOOK_DISPATCH_CONSUMER: &str = "webhook-dispatch";
/// Durable consumer on [`WEBHOOK_DELIVERIES_STREAM`] that makes the HTTP calls.
pub const WEBHOOK_DELIVER_CONSUMER: &str = "webhook-deliver";

/// Subject of a delivery of one event to `endpoint`.
pub fn webhook_delivery(endpoint: &str) -> String {
    format!("dota.webhooks.deliver.{endpoint}")
}

/// Subject of `endpoint`'s delivery log.
pub fn webhook_log(endpoint: &str) -> String {
    format!("dota.webhooks.log.{endpoint}")
}

/// `--store nats`: KV bucket of stored resources, failures, announcements and tracked imports.
pub const DATA_BUCKET: &str = "dota_data";
/// `--store nats`: KV bucket of claims (per-key TTL: the lease).
pub const CLAIMS_BUCKET: &str = "dota_claims";
/// `--store nats`: Object Store bucket of bodies over the KV value limit.
pub const BODIES_BUCKET: &str = "dota_bodies";
/// `--store nats`: KV bucket of when each resource was last requested (by any instance, to
/// the minute): what the shared store's upkeep evicts by.
pub const ACCESS_BUCKET: &str = "dota_access";
/// The counter stream (`allow_msg_counter`) of the shared rate budget.
pub const BUDGET_STREAM: &str = "DOTA_BUDGET";
/// Subjects captured by [`BUDGET_STREAM`].
pub const BUDGET_SUBJECTS: &str = "dota.budget.>";
/// KV bucket in which every instance sharing the budget keeps a heartbeat key (per-key TTL).
pub const INSTANCES_BUCKET: &str = "dota_instances";

/// Counter subject of `service`'s calls by egress `identity` in the UTC minute `unix_minute`
/// (`unix_secs / 60`): the shape of every window shorter than a day ([`budget_window`]).
pub fn budget_minute(service: &str, identity: &str, unix_minute: u64) -> String {
    budget_window(service, identity, "minute", unix_minute)
}

/// Counter subject of `service`'s calls by egress `identity` in calendar window `index`
/// (`unix_secs / length`) of the window named `window` (`second`, `minute`, `hour`).
pub fn budget_window(service: &str, identity: &str, window: &str, index: u64) -> String {
    format!("dota.budget.{service}.{identity}.{window}.{index}")
}

/// Counter subject of `service`'s calls by egress `identity` on the UTC day `yyyymmdd`.
pub fn budget_day(service: &str, identity: &str, yyyymmdd: &str) -> String {
    format!("dota.budget.{service}.{identity}.day.{yyyymmdd}")
}

/// Subject of `instance`'s heartbeat key in [`INSTANCES_BUCKET`] (the KV layout
/// `$KV.<bucket>.<key>`), published directly so it can carry a per-key TTL.
pub fn instance_heartbeat(instance: &str) -> String {
    format!("$KV.{INSTANCES_BUCKET}.{instance}")
}

/// The stream, subject and consumer names of one job queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueNames {
    stream: String,
    /// Subjects are `<prefix>.<priority>.<kind>`.
    prefix: String,
    /// Consumers are `<consumer_prefix>-<kind>-<priority>`.
    consumer_prefix: String,
}

impl QueueNames {
    /// `DOTA_JOBS` on `dota.jobs.>`: the embedded server's queue (private by construction).
    pub fn shared() -> Self {
        Self {
            stream: JOBS_STREAM.to_string(),
            prefix: "dota.jobs".to_string(),
            consumer_prefix: "fetch".to_string(),
        }
    }

    /// A queue of one instance's own on a shared server, named by its instance ID (letters and
    /// digits). Its subjects do not overlap `dota.jobs.>`, which JetStream requires of streams
    /// on one server.
    pub fn private(instance: &str) -> Self {
        Self {
            stream: format!("{JOBS_STREAM}_{}", instance.to_ascii_uppercase()),
            prefix: format!("dota.q.{instance}"),
            consumer_prefix: format!("fetch-{instance}"),
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Every subject of this queue.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// Subject a job for `kind` at `priority` is published on.
    pub fn job(&self, priority: Priority, kind: ResourceKind) -> String {
        format!("{}.{}.{}", self.prefix, priority.as_str(), kind.as_str())
    }

    /// Durable consumer name for one (priority, kind) pair. Work-queue streams need consumers
    /// with non-overlapping filters, which one consumer per subject guarantees.
    pub fn consumer(&self, priority: Priority, kind: ResourceKind) -> String {
        format!(
            "{}-{}-{}",
            self.consumer_prefix,
            kind.as_str(),
            priority.as_str()
        )
    }
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
            QueueNames::shared().job(Priority::Interactive, ResourceKind::Match),
            "dota.jobs.interactive.match"
        );
    }

    #[test]
    fn budget_subjects_follow_the_documented_shape() {
        assert_eq!(
            budget_minute("opendota", "anonymous", 28_800_000),
            "dota.budget.opendota.anonymous.minute.28800000"
        );
        assert_eq!(
            budget_day("dotabuff", "0a1b", "20241004"),
            "dota.budget.dotabuff.0a1b.day.20241004"
        );
        assert!(budget_minute("opendota", "x", 1).starts_with(&BUDGET_SUBJECTS[..12]));
        assert_eq!(instance_heartbeat("i1"), "$KV.dota_instances.i1");
    }

    #[test]
    fn a_private_queue_overlaps_nothing_of_the_shared_one() {
        let own = QueueNames::private("a1b2c3");
        assert_eq!(own.stream(), "DOTA_JOBS_A1B2C3");
        assert_eq!(own.all_subjects(), "dota.q.a1b2c3.>");
        assert_eq!(
            own.job(Priority::Bulk, ResourceKind::Player),
            "dota.q.a1b2c3.bulk.player"
        );
        assert_eq!(
            own.consumer(Priority::Bulk, ResourceKind::Player),
            "fetch-a1b2c3-player-bulk"
        );
        assert!(
            !own.job(Priority::Bulk, ResourceKind::Player)
                .starts_with("dota.jobs.")
        );
        assert_eq!(QueueNames::shared().all_subjects(), JOBS_SUBJECTS);
    }
}
