//! A unit of work: which resource to fetch, under which claim, how urgently, whether a forced
//! refresh cascades, and which resources it fans out to. The same record is the JetStream
//! message body and the in-flight entry in redb.

use serde::{Deserialize, Serialize};

use super::{Priority, Signature, TeamId};

/// Which of the resources a fetched resource refers to get queued too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "mode", content = "team")]
pub enum Fanout {
    /// Everything it refers to (a match's players, a team's matches).
    #[default]
    All,
    /// For a match: only the players on this team's side.
    TeamSide(TeamId),
    /// Nothing (a league's match list unless asked).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub signature: Signature,
    /// Identifies the claim that queued this job; a job whose generation is no longer in
    /// flight is stale (done, or superseded) and is acked without work.
    pub generation: u64,
    pub priority: Priority,
    /// Set by `force=true`: when the refresh was asked for. The fan-out of this job refetches
    /// every resource fetched before that moment, and nothing fetched after it, so a resource
    /// shared by many parents is refetched once.
    #[serde(default)]
    pub forced_at_ms: Option<i64>,
    #[serde(default)]
    pub fanout: Fanout,
    pub queued_at_ms: i64,
}

impl Job {
    /// `Nats-Msg-Id`: the signature plus its generation, so a re-publish of the same job is
    /// dropped by JetStream's duplicate window, while a later fetch of the same resource is not.
    pub fn message_id(&self) -> String {
        format!("{}@{}", self.signature, self.generation)
    }

    pub fn is_forced(&self) -> bool {
        self.forced_at_ms.is_some()
    }
}
