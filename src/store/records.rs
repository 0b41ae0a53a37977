//! Records kept in redb beside the bodies: entry metadata, in-flight claims and failures.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Metadata of a stored resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryMeta {
    /// Unix milliseconds of the successful upstream fetch.
    pub fetched_at_ms: i64,
    /// Set by `force=true` or the invalidation API: the copy may still be served as stale,
    /// but it is never reported `ready` and a refresh is queued.
    pub invalidated: bool,
    pub bytes: u64,
    /// Content hash of the body (its entity tag); absent for bodies stored before tags were
    /// kept, whose readers compute it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<crate::encoding::ContentTag>,
}

/// A resource that is queued or being fetched: the job that was published for it.
pub type InFlight = crate::domain::Job;

/// The last attempt at a resource failed permanently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub reason: String,
    /// The upstream said the resource does not exist (HTTP 404).
    pub not_found: bool,
    pub failed_at_ms: i64,
    pub attempts: u64,
}

impl Failure {
    /// When the failure stops being believed, for a failure TTL of `ttl`: the first request
    /// from then on queues a new attempt. An upstream 404 is often "not yet" (a match still
    /// being played), so no failure is final.
    pub fn retry_at_ms(&self, ttl: Duration) -> i64 {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.failed_at_ms.saturating_add(ttl_ms)
    }

    /// Whether the failure is still reported at `now_ms` (rather than retried).
    pub fn in_force(&self, ttl: Duration, now_ms: i64) -> bool {
        now_ms < self.retry_at_ms(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_at(ms: i64) -> Failure {
        Failure {
            reason: "upstream answered 404".to_string(),
            not_found: true,
            failed_at_ms: ms,
            attempts: 1,
        }
    }

    #[test]
    fn a_failure_is_in_force_until_its_ttl_has_passed() {
        let ttl = Duration::from_secs(600);
        let f = failed_at(1_000);
        assert_eq!(f.retry_at_ms(ttl), 601_000);
        assert!(f.in_force(ttl, 1_000));
        assert!(f.in_force(ttl, 600_999));
        assert!(!f.in_force(ttl, 601_000));
        assert!(!f.in_force(ttl, 10_000_000));
    }

    #[test]
    fn a_huge_ttl_saturates_instead_of_wrapping() {
        let f = failed_at(i64::MAX - 5);
        assert_eq!(f.retry_at_ms(Duration::from_secs(u64::MAX)), i64::MAX);
        assert!(f.in_force(Duration::from_secs(u64::MAX), i64::MAX - 1));
    }
}
