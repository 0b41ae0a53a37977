//! A service's budget as the status route, the reserve gate and the in-flight limits read it:
//! [`BudgetSnapshot`] (its shape is part of the HTTP API, schema `Budget`), with the UTC day's
//! budget in [`DayBudget`].

use std::time::{Duration, SystemTime};

use super::window::Window;
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
    /// Calls left in the current minute window. Dotabuff has no window on one instance: 1 if a
    /// call could go now, else 0 (with `scope: cluster`, what is left of the shared minute).
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
    /// Every window of the budget, shortest first (STRATZ: second, minute, hour, day).
    pub windows: Vec<WindowBudget>,
    /// Whose calls `remainingMinute`, `remainingDay`, `day` and `windows` count: this
    /// instance's (`instance`), or every instance's that shares the budget (`cluster`, with
    /// `--store nats`, read from the shared counters). `pausedForMs`, `grantedTotal` and
    /// `waitsTotal` are this instance's either way.
    pub scope: BudgetScope,
}

/// Whose calls a service's budget counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BudgetScope {
    /// This instance's own limiter.
    #[default]
    Instance,
    /// The counters every instance sharing the budget adds to (`--store nats`).
    Cluster,
}

/// One window of a service's budget, in a [`BudgetSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowBudget {
    /// `second`, `minute`, `hour` or `day` (calendar windows, UTC).
    pub window: &'static str,
    /// Configured calls per window.
    pub limit: u32,
    /// Calls left in the current window.
    pub remaining: u32,
    /// When the current window ends (RFC 3339, UTC, whole seconds).
    #[schema(format = DateTime)]
    pub resets_at: String,
    /// Calls counted in the current window (by every instance with `scope: cluster`); absent
    /// where the budget keeps no count (Dotabuff's even pacing on one instance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u32>,
}

/// One window of a service's shared budget as the counters hold it: the calls every instance
/// counted in the window holding some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsage {
    pub window: Window,
    pub limit: u32,
    /// The counter's total (never below 0 in practice: a take-back follows its increment).
    pub used: i64,
}

impl WindowUsage {
    fn used(&self) -> u32 {
        u32::try_from(self.used.max(0)).unwrap_or(u32::MAX)
    }

    /// Calls left in the window.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used())
    }

    /// The window as a snapshot shows it, for the window holding `now`.
    pub fn budget(&self, now: SystemTime) -> WindowBudget {
        WindowBudget {
            window: self.window.as_str(),
            limit: self.limit,
            remaining: self.remaining(),
            resets_at: rfc3339_secs(self.window.ends_at(now)),
            used: Some(self.used()),
        }
    }
}

impl BudgetSnapshot {
    /// This snapshot with its windows as every instance counted them (`scope: cluster`):
    /// `usage` holds each window's counter for the windows holding `now`.
    pub fn with_cluster_usage(mut self, usage: &[WindowUsage], now: SystemTime) -> Self {
        self.windows = usage.iter().map(|u| u.budget(now)).collect();
        if let Some(minute) = usage.iter().find(|u| u.window == Window::Minute) {
            self.limit_per_minute = minute.limit;
            self.remaining_minute = minute.remaining();
        }
        if let Some(day) = usage.iter().find(|u| u.window == Window::Day) {
            self.limit_per_day = Some(day.limit);
            self.remaining_day = Some(day.remaining());
            self.day = Some(DayBudget {
                limit: day.limit,
                remaining: day.remaining(),
                resets_at: rfc3339_secs(Window::Day.ends_at(now)),
            });
        }
        self.scope = BudgetScope::Cluster;
        self
    }

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
