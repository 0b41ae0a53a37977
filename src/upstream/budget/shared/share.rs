//! Pure rules of the shared budget, with the time passed in so each is unit-tested at exact
//! instants: which counter subjects a call at some instant increments, how long a refused
//! caller waits, how an upstream's `Remaining` report corrects a counter, and the fallback
//! [`LocalShare`] (this process's grants per window, capped at limit ÷ live instances while the
//! counters cannot be reached). Only [`SharedBudget`](super::SharedBudget) calls into it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::actors::rate_window::WINDOW_MARGIN;
use crate::bus::subjects;
use crate::config::RateLimits;
use crate::config::secrets::ApiKey;
use crate::domain::Service;

/// Length of a minute window in seconds (OpenDota's calendar minute).
const MINUTE_SECS: u64 = 60;
/// Length of a day window in seconds; unix time has no leap seconds, so this is the UTC day.
const DAY_SECS: u64 = 86_400;

/// Who the upstream counts our calls against: a short hash of the OpenDota API key (the key
/// itself never leaves the process), or `anonymous` (no key: OpenDota counts per IP; Dotabuff
/// always). Instances sharing a key share a budget; a key change starts a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressIdentity(String);

impl EgressIdentity {
    /// The identity of calls made without a key.
    pub fn anonymous() -> Self {
        Self("anonymous".to_string())
    }

    /// `k` + the xxh3-64 hash of `key` in hex (17 characters, one subject token); anonymous
    /// without a key. The `k` keeps a hash from ever reading as the word `anonymous`.
    pub fn of_api_key(key: Option<&ApiKey>) -> Self {
        match key {
            Some(key) => Self(format!(
                "k{:016x}",
                xxhash_rust::xxh3::xxh3_64(key.0.as_bytes())
            )),
            None => Self::anonymous(),
        }
    }

    /// The identity as it appears in counter subjects.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The two counting windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// The UTC calendar minute.
    Minute,
    /// The UTC calendar day.
    Day,
}

impl WindowKind {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WindowKind::Minute => "minute",
            WindowKind::Day => "day",
        }
    }

    fn len_secs(self) -> u64 {
        match self {
            WindowKind::Minute => MINUTE_SECS,
            WindowKind::Day => DAY_SECS,
        }
    }

    /// Index of the window holding `now` (`unix_secs / len`).
    pub fn index_at(self, now: SystemTime) -> u64 {
        since_epoch(now).as_secs() / self.len_secs()
    }

    /// Time from `now` until the next window of this kind starts, plus [`WINDOW_MARGIN`] so a
    /// caller woken by it lands inside the new window.
    pub fn wait_for_next(self, now: SystemTime) -> Duration {
        let next = Duration::from_secs(
            self.index_at(now)
                .saturating_add(1)
                .saturating_mul(self.len_secs()),
        );
        next.saturating_sub(since_epoch(now)) + WINDOW_MARGIN
    }
}

/// A clock before 1970 is broken beyond repair; reading it as the epoch keeps arithmetic total.
fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// One service's limits as the shared budget applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// Calls per UTC minute, over every instance.
    pub per_minute: u32,
    /// Calls per UTC day, where the upstream has a day budget (OpenDota).
    pub per_day: Option<u32>,
}

impl ServiceLimits {
    /// The limits of `service` in `limits`; a limit of 0 is raised to 1 as the local limiter
    /// does, so a refused caller always has a next window to wait for.
    pub fn of(limits: &RateLimits, service: Service) -> Self {
        match service {
            Service::OpenDota => Self {
                per_minute: limits.opendota_per_minute.max(1),
                per_day: Some(limits.opendota_per_day.max(1)),
            },
            Service::Dotabuff => Self {
                per_minute: limits.dotabuff_per_minute.max(1),
                per_day: None,
            },
        }
    }

    /// The limit of one window kind; `None` for a day where the service has no day budget.
    pub fn of_kind(self, kind: WindowKind) -> Option<u32> {
        match kind {
            WindowKind::Minute => Some(self.per_minute),
            WindowKind::Day => self.per_day,
        }
    }
}

/// The counter subject of `service`'s `kind` window holding `now` for `identity`.
pub fn counter_subject(
    service: Service,
    identity: &EgressIdentity,
    kind: WindowKind,
    now: SystemTime,
) -> String {
    match kind {
        WindowKind::Minute => {
            subjects::budget_minute(service.as_str(), identity.as_str(), kind.index_at(now))
        }
        WindowKind::Day => {
            let day = chrono::DateTime::<chrono::Utc>::from(now)
                .format("%Y%m%d")
                .to_string();
            subjects::budget_day(service.as_str(), identity.as_str(), &day)
        }
    }
}

/// How much to add to a counter standing at `counter` after the upstream reported `remaining`
/// calls left of `limit`: the upstream has seen `limit - remaining` calls (our grants that have
/// not reached it yet are not among them, so a higher counter is kept). `None`: no raise.
pub fn correction(limit: u32, remaining: i64, counter: i64) -> Option<i64> {
    let used = i64::from(limit).saturating_sub(remaining);
    (used > counter).then(|| used - counter)
}

/// limit ÷ live instances, rounded down: the most one instance may grant in a window while the
/// counters cannot be reached. 0 when there are more instances than calls; such an instance then
/// makes no call until the counters answer again.
pub fn share(limit: u32, live_instances: usize) -> u32 {
    let live = u32::try_from(live_instances.max(1)).unwrap_or(u32::MAX);
    limit / live
}

/// This process's grants in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Spent {
    index: u64,
    used: u32,
}

impl Spent {
    fn used_in(self, index: u64) -> u32 {
        if index == self.index { self.used } else { 0 }
    }

    fn record(&mut self, index: u64) {
        if index != self.index {
            *self = Spent { index, used: 0 };
        }
        self.used = self.used.saturating_add(1);
    }
}

/// This process's own grants per window for one service, counted always (on the counters or
/// not), so a fallback that starts mid-window counts what this process already spent in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalShare {
    minute: Spent,
    day: Spent,
}

impl LocalShare {
    /// Counts a grant made at `now`.
    pub fn record(&mut self, now: SystemTime) {
        self.minute.record(WindowKind::Minute.index_at(now));
        self.day.record(WindowKind::Day.index_at(now));
    }

    /// Grants one call at `now` within this instance's share of `limits` over `live` instances,
    /// and counts it; or names the spent window.
    pub fn try_take(
        &mut self,
        now: SystemTime,
        limits: ServiceLimits,
        live: usize,
    ) -> Result<(), WindowKind> {
        let minute = WindowKind::Minute.index_at(now);
        if self.minute.used_in(minute) >= share(limits.per_minute, live) {
            return Err(WindowKind::Minute);
        }
        if let Some(per_day) = limits.per_day
            && self.day.used_in(WindowKind::Day.index_at(now)) >= share(per_day, live)
        {
            return Err(WindowKind::Day);
        }
        self.record(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-10-04T00:00:10Z: 10 s into a minute and into a day.
    fn at(secs_after: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_728_000_000 + secs_after)
    }

    #[test]
    fn identities_hash_the_key_and_never_show_it() {
        let key: ApiKey = "secret-key-123".parse().unwrap();
        let id = EgressIdentity::of_api_key(Some(&key));
        assert_eq!(id.as_str().len(), 17);
        assert!(!id.as_str().contains("secret"));
        assert!(id.as_str()[1..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, EgressIdentity::of_api_key(Some(&key)));
        let other: ApiKey = "secret-key-124".parse().unwrap();
        assert_ne!(id, EgressIdentity::of_api_key(Some(&other)));
        assert_eq!(EgressIdentity::of_api_key(None).as_str(), "anonymous");
    }

    #[test]
    fn subjects_name_the_calendar_minute_and_utc_day() {
        let id = EgressIdentity::anonymous();
        let now = at(10);
        assert_eq!(
            counter_subject(Service::OpenDota, &id, WindowKind::Minute, now),
            "dota.budget.opendota.anonymous.minute.28800000"
        );
        assert_eq!(
            counter_subject(Service::OpenDota, &id, WindowKind::Day, now),
            "dota.budget.opendota.anonymous.day.20241004"
        );
        assert_eq!(
            counter_subject(Service::Dotabuff, &id, WindowKind::Minute, at(60)),
            "dota.budget.dotabuff.anonymous.minute.28800001"
        );
    }

    #[test]
    fn a_refused_caller_waits_for_the_next_window_plus_the_margin() {
        assert_eq!(
            WindowKind::Minute.wait_for_next(at(10)),
            Duration::from_secs(50) + WINDOW_MARGIN
        );
        assert_eq!(
            WindowKind::Day.wait_for_next(at(10)),
            Duration::from_secs(86_390) + WINDOW_MARGIN
        );
    }

    #[test]
    fn remaining_raises_a_counter_and_never_lowers_it() {
        // 10 a minute, upstream says 3 left: it saw 7.
        assert_eq!(correction(10, 3, 5), Some(2));
        assert_eq!(correction(10, 3, 7), None);
        assert_eq!(
            correction(10, 3, 9),
            None,
            "our grants may not have reached it"
        );
        assert_eq!(correction(10, -2, 10), Some(2));
        assert_eq!(correction(10, 10, 0), None);
    }

    #[test]
    fn the_fallback_share_counts_what_this_process_spent_in_the_window() {
        let limits = ServiceLimits {
            per_minute: 10,
            per_day: Some(100),
        };
        assert_eq!(share(10, 3), 3);
        assert_eq!(share(10, 0), 10, "at least this instance is live");
        assert_eq!(share(2, 3), 0);

        let mut spent = LocalShare::default();
        // Two grants on the counters earlier in this minute.
        spent.record(at(10));
        spent.record(at(11));
        // Two instances: a share of 5 a minute, 2 already used.
        for _ in 0..3 {
            assert_eq!(spent.try_take(at(12), limits, 2), Ok(()));
        }
        assert_eq!(spent.try_take(at(12), limits, 2), Err(WindowKind::Minute));
        // The next minute has a fresh share; the day keeps counting.
        assert_eq!(spent.try_take(at(60), limits, 2), Ok(()));
        let tight = ServiceLimits {
            per_minute: 10,
            per_day: Some(12),
        };
        assert_eq!(spent.try_take(at(61), tight, 2), Err(WindowKind::Day));
    }
}
