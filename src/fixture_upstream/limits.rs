//! OpenDota-style rate windows for the fixture upstream: one per-minute and one per-day budget,
//! counted in fixed calendar windows of UTC wall-clock time (`unix_seconds / 60` and
//! `unix_seconds / 86400`), exactly as OpenDota counts them. Owned by the request state in
//! [`super::routes`]; only `/opendota` requests pass through here.
//!
//! Invariant: a refused request consumes nothing, so `used <= limit` always holds and the
//! remaining budget reported in headers never goes negative (real OpenDota may report negative
//! numbers; clients must cope with both).
//!
//! "Now" comes from the [`Clock`] in `FixtureConfig::clock`: a test hands the fixture and the
//! service the same clock, so both see a window open at the same moment when it is moved.

use std::time::UNIX_EPOCH;

use crate::clock::Clock;

const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_DAY: u64 = 86_400;

/// Seconds since the Unix epoch, UTC, on `clock`. A clock before 1970 counts as 0 rather than
/// failing: the fixture must keep answering, and window ids only need to be monotonic in practice.
pub(crate) fn unix_now(clock: &Clock) -> u64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Budget left in each window after the request was counted (or not). `None` means that window
/// has no limit configured; the matching `X-Rate-Limit-Remaining-*` header is then omitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Remaining {
    pub(crate) minute: Option<u32>,
    pub(crate) day: Option<u32>,
}

/// Outcome of asking for one unit of budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// One unit of each window was consumed.
    Admitted(Remaining),
    /// At least one window is exhausted; nothing was consumed.
    Refused(Remaining),
}

/// One fixed window: which window it is and how many requests it has counted.
#[derive(Debug, Default)]
struct Window {
    id: u64,
    used: u32,
}

impl Window {
    /// Starts counting from zero when the clock has moved into a later window.
    fn roll(&mut self, id: u64) {
        if id != self.id {
            self.id = id;
            self.used = 0;
        }
    }

    fn exhausted(&self, limit: Option<u32>) -> bool {
        limit.is_some_and(|l| self.used >= l)
    }

    fn remaining(&self, limit: Option<u32>) -> Option<u32> {
        limit.map(|l| l.saturating_sub(self.used))
    }
}

/// The two budgets of one API consumer (the fixture has exactly one consumer: everyone).
#[derive(Debug)]
pub(crate) struct RateWindows {
    per_minute: Option<u32>,
    per_day: Option<u32>,
    minute: Window,
    day: Window,
}

impl RateWindows {
    pub(crate) fn new(per_minute: Option<u32>, per_day: Option<u32>) -> Self {
        Self {
            per_minute,
            per_day,
            minute: Window::default(),
            day: Window::default(),
        }
    }

    /// Consumes one unit of both windows at `now` (unix seconds) unless either is exhausted.
    pub(crate) fn admit(&mut self, now: u64) -> Admission {
        self.roll(now);
        if self.minute.exhausted(self.per_minute) || self.day.exhausted(self.per_day) {
            return Admission::Refused(self.remaining_rolled());
        }
        self.minute.used = self.minute.used.saturating_add(1);
        self.day.used = self.day.used.saturating_add(1);
        Admission::Admitted(self.remaining_rolled())
    }

    /// Budget left at `now` without consuming any.
    pub(crate) fn remaining(&mut self, now: u64) -> Remaining {
        self.roll(now);
        self.remaining_rolled()
    }

    fn roll(&mut self, now: u64) {
        self.minute.roll(now / SECONDS_PER_MINUTE);
        self.day.roll(now / SECONDS_PER_DAY);
    }

    fn remaining_rolled(&self) -> Remaining {
        Remaining {
            minute: self.minute.remaining(self.per_minute),
            day: self.day.remaining(self.per_day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01T00:00:00Z: a minute and a day boundary.
    const MIDNIGHT: u64 = 1_704_067_200;

    #[test]
    fn minute_budget_is_refused_after_limit_and_refusal_consumes_nothing() {
        let mut w = RateWindows::new(Some(2), Some(10));
        assert_eq!(
            w.admit(MIDNIGHT),
            Admission::Admitted(Remaining {
                minute: Some(1),
                day: Some(9)
            })
        );
        assert!(matches!(w.admit(MIDNIGHT + 1), Admission::Admitted(_)));
        let refused = Remaining {
            minute: Some(0),
            day: Some(8),
        };
        assert_eq!(w.admit(MIDNIGHT + 2), Admission::Refused(refused));
        assert_eq!(w.admit(MIDNIGHT + 59), Admission::Refused(refused));
    }

    #[test]
    fn minute_window_follows_the_calendar_minute_not_the_first_request() {
        let mut w = RateWindows::new(Some(1), None);
        assert!(matches!(w.admit(MIDNIGHT + 59), Admission::Admitted(_)));
        // One second later is a new calendar minute, so the budget is fresh.
        assert_eq!(
            w.admit(MIDNIGHT + 60),
            Admission::Admitted(Remaining {
                minute: Some(0),
                day: None
            })
        );
    }

    #[test]
    fn day_budget_spans_minutes_and_resets_at_utc_midnight() {
        let mut w = RateWindows::new(None, Some(2));
        assert!(matches!(w.admit(MIDNIGHT - 3600), Admission::Admitted(_)));
        assert!(matches!(w.admit(MIDNIGHT - 60), Admission::Admitted(_)));
        assert!(matches!(w.admit(MIDNIGHT - 1), Admission::Refused(_)));
        assert!(matches!(w.admit(MIDNIGHT), Admission::Admitted(_)));
    }

    #[test]
    fn unlimited_windows_report_no_remaining_budget() {
        let mut w = RateWindows::new(None, None);
        assert_eq!(
            w.remaining(MIDNIGHT),
            Remaining {
                minute: None,
                day: None
            }
        );
    }
}
