//! A service's budget as the status route, the reserve gate and the in-flight limits read it:
//! [`BudgetSnapshot`] (its shape is part of the HTTP API, schema `Budget`), with the UTC day's
//! budget in [`DayBudget`].

use std::time::{Duration, SystemTime};

use crate::domain::Service;

// The doc comments below are the OpenAPI schema's descriptions, kept word for word (their
// links name the RateLimiter's `Snapshot` message and `Grant::Wait`).
/// One service's budget at the time of a [`Snapshot`].
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Budget)]
pub struct BudgetSnapshot {
    /// The upstream this budget is for.
    pub service: Service,
    /// Configured calls per minute.
    pub limit_per_minute: u32,
    /// Calls left in the current minute window. Dotabuff has no window: 1 if a call could go
    /// now, else 0.
    pub remaining_minute: u32,
    /// Configured calls per UTC day; `None` where the upstream has no day budget (Dotabuff).
    pub limit_per_day: Option<u32>,
    /// Calls left in the current UTC day; `None` where there is no day budget.
    pub remaining_day: Option<u32>,
    /// The UTC day's budget and when it resets; `None` where there is no day budget. While
    /// `remaining` is 0, every call waits until `resetsAt` (imports pause and then resume by
    /// themselves).
    pub day: Option<DayBudget>,
    /// How long until the next call could be granted; 0 if one could go now.
    pub paused_for_ms: u64,
    /// Grants since start.
    pub granted_total: u64,
    /// Acquires answered with [`Grant::Wait`] since start.
    pub waits_total: u64,
}

impl BudgetSnapshot {
    /// Calls this budget can grant right now: none while it is paused, else what is left of
    /// both its minute and its day.
    pub fn grantable(&self) -> u32 {
        if self.paused_for_ms > 0 {
            return 0;
        }
        self.remaining_minute
            .min(self.remaining_day.unwrap_or(u32::MAX))
    }
}

/// One service's budget for the current UTC day, in a [`BudgetSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DayBudget {
    /// Configured calls per UTC day.
    pub limit: u32,
    /// Calls left today; 0 means the day is spent and calls wait for `resetsAt`.
    pub remaining: u32,
    /// When the day budget is whole again: the next UTC midnight on the service's clock
    /// (RFC 3339, UTC, whole seconds).
    #[schema(format = DateTime)]
    pub resets_at: String,
}

impl DayBudget {
    /// `Some(resetsAt)` while the day's budget is spent.
    pub fn spent_until(&self) -> Option<&str> {
        (self.remaining == 0).then_some(self.resets_at.as_str())
    }
}

/// `at` as RFC 3339 in UTC, whole seconds (`2026-12-01T00:00:00Z`).
pub(super) fn rfc3339_secs(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
