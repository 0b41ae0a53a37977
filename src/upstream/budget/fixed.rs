//! Budgets counted per calendar window, the way an upstream that publishes its budget counts
//! them (OpenDota: the UTC minute and the UTC day, with what is left reported in response
//! headers). [`FixedWindows`] tracks the same windows, spends a window's budget as fast as work
//! arrives, and stays in step with the upstream's own count. Pure: the wall-clock time is passed
//! in on each call, so every rule is unit-tested at exact instants.

use std::time::{Duration, SystemTime};

use super::Remaining;
use super::limits::WindowLimit;
use super::snapshot::WindowUsage;
use super::window::{Count, Window, seen_by_upstream};

/// No grants in the last `GUARD` of a window. A call granted at 59.9 s spends some time in our
/// mailbox, the HTTP client and the network, and may be counted by the upstream in the *next*
/// window, on top of that window's full budget. 300 ms covers a request's usual time to reach the
/// upstream and modest clock skew; it costs at most 0.5 % of each minute. The end of an hour or a
/// day is also the end of a minute, so for those it costs nothing more. A second window (STRATZ)
/// would lose 30 % to it, so a window's guard is at most a twentieth of it ([`guard_of`]: 50 ms
/// of a second).
pub const GUARD: Duration = Duration::from_millis(300);

/// The guard band of `window`: [`GUARD`], or a twentieth of a shorter window.
pub fn guard_of(window: Window) -> Duration {
    GUARD.min(Duration::from_millis(window.len_secs() * 1000 / 20))
}

/// A budget of calls per calendar window, counted the way the upstream counts them.
///
/// Invariants: within one window at most its limit of grants, and none in the last [`GUARD`] of
/// a window. There is no even spacing: a burst of work is granted at once, up to what is left.
///
/// Keeping in step: after each response [`observe`](Self::observe) raises the counts to
/// `limit - remaining` as reported by the upstream (other clients sharing our key or IP, restarts
/// of this service). A response that crosses a window boundary is counted against the window it
/// arrives in; that can only over-count, costing at most the rest of that minute, which the day
/// budget (on average ~2 calls a minute) makes cheap.
#[derive(Debug, Clone)]
pub struct FixedWindows {
    /// Shortest window first, each with what was counted in it.
    windows: Vec<(WindowLimit, Count)>,
}

impl FixedWindows {
    /// A budget of `limits` (shortest window first), nothing spent yet.
    pub fn new(limits: &[WindowLimit]) -> Self {
        FixedWindows {
            windows: limits.iter().map(|&l| (l, Count::default())).collect(),
        }
    }

    /// The configured calls per `window`; `None` where there is no such window.
    pub fn limit(&self, window: Window) -> Option<u32> {
        self.find(window).map(|(limit, _)| limit.limit)
    }

    /// Whether a call could be granted at `now`, without spending anything. `Err` carries how
    /// long to wait: until the end of the longest spent window (a spent day waits for the next
    /// UTC midnight, however the minute stands), else until the next minute if `now` is in the
    /// guard band (each plus the window margin).
    pub fn check(&self, now: SystemTime) -> Result<(), Duration> {
        for (limit, count) in self.windows.iter().rev() {
            let window = limit.window;
            if count.used_in(window.index_at(now)) >= limit.limit
                || window.left_at(now) <= guard_of(window)
            {
                return Err(window.wait_for_next(now));
            }
        }
        Ok(())
    }

    /// Grants one call at `now` and counts it in every window, or says how long to wait (see
    /// [`check`](Self::check)); a refusal spends nothing.
    pub fn try_acquire(&mut self, now: SystemTime) -> Result<(), Duration> {
        self.check(now)?;
        for (limit, count) in &mut self.windows {
            count.add_one(limit.window.index_at(now));
        }
        Ok(())
    }

    /// Takes in the upstream's remaining counts from a response received at `now`: each reported
    /// window's count becomes `max(own count, limit - remaining)`. `remaining` may be negative
    /// (the upstream let calls through beyond the limit); then the window counts as more than
    /// spent.
    pub fn observe(&mut self, now: SystemTime, reported: Remaining) {
        self.roll(now);
        for (limit, count) in &mut self.windows {
            if let Some(remaining) = reported.of(limit.window) {
                count.raise_to(used_from_remaining(limit.limit, remaining));
            }
        }
    }

    /// The upstream answered 429 at `now`: the current shortest window counts as spent, so the
    /// next grant comes at the next such window (or later, if a longer one is spent too).
    pub fn rate_limited(&mut self, now: SystemTime) {
        self.roll(now);
        if let Some((limit, count)) = self.windows.first_mut() {
            count.raise_to(limit.limit);
        }
    }

    /// What is left at `now` in the `window` that holds it; `None` where there is no such window.
    pub fn left(&self, window: Window, now: SystemTime) -> Option<u32> {
        self.find(window).map(|(limit, count)| {
            limit
                .limit
                .saturating_sub(count.used_in(window.index_at(now)))
        })
    }

    /// Every window at `now`, shortest first: the window, its limit, the calls counted in it.
    pub fn each(&self, now: SystemTime) -> Vec<WindowUsage> {
        self.windows
            .iter()
            .map(|(limit, count)| WindowUsage {
                window: limit.window,
                limit: limit.limit,
                used: i64::from(count.used_in(limit.window.index_at(now))),
            })
            .collect()
    }

    fn find(&self, window: Window) -> Option<&(WindowLimit, Count)> {
        self.windows
            .iter()
            .find(|(limit, _)| limit.window == window)
    }

    fn roll(&mut self, now: SystemTime) {
        for (limit, count) in &mut self.windows {
            count.roll_to(limit.window.index_at(now));
        }
    }
}

/// `limit - remaining`, clamped to what a `u32` count can hold.
fn used_from_remaining(limit: u32, remaining: i64) -> u32 {
    u32::try_from(seen_by_upstream(limit, remaining).max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::domain::Service;
    use crate::upstream::budget::Remaining as Reported;
    use crate::upstream::budget::limits::ServiceLimits;
    use crate::upstream::budget::window::WINDOW_MARGIN;

    const DAY_SECS: u64 = Window::Day.len_secs();

    /// OpenDota's shape: `per_minute` calls a UTC minute, `per_day` a UTC day.
    fn windows(per_minute: u32, per_day: u32) -> FixedWindows {
        let limits = ServiceLimits::burst(
            Service::OpenDota,
            &[(Window::Minute, per_minute), (Window::Day, per_day)],
        );
        FixedWindows::new(&limits.windows)
    }

    /// What the upstream reports in a response's headers.
    fn reported(minute: Option<i64>, day: Option<i64>) -> Reported {
        Reported {
            minute,
            day,
            ..Reported::default()
        }
    }

    /// How much of the minute and the day is left at some instant.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Remaining {
        minute: u32,
        day: u32,
    }

    /// The minute-and-day view the assertions read.
    trait MinuteAndDay {
        fn remaining(&self, now: SystemTime) -> Remaining;
        fn day_resets_at(&self, now: SystemTime) -> SystemTime;
    }

    impl MinuteAndDay for FixedWindows {
        fn remaining(&self, now: SystemTime) -> Remaining {
            Remaining {
                minute: self.left(Window::Minute, now).unwrap_or_default(),
                day: self.left(Window::Day, now).unwrap_or_default(),
            }
        }

        fn day_resets_at(&self, now: SystemTime) -> SystemTime {
            Window::Day.ends_at(now)
        }
    }

    /// Midnight UTC, 2024-10-04: day index 20 000.
    const DAY_START: u64 = 20_000 * DAY_SECS;

    /// `millis` after midnight UTC on the test day.
    fn at(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(DAY_START) + Duration::from_millis(millis)
    }

    fn secs(s: u64) -> u64 {
        s * 1000
    }

    #[test]
    fn a_burst_up_to_the_minute_limit_is_granted_at_once() {
        let mut w = windows(60, 3000);
        let now = at(secs(10));
        for i in 0..60 {
            assert_eq!(w.try_acquire(now), Ok(()), "call {i}");
        }
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 0,
                day: 2940
            }
        );
    }

    #[test]
    fn the_call_after_the_minute_limit_waits_for_the_next_minute() {
        let mut w = windows(10, 3000);
        for _ in 0..10 {
            assert_eq!(w.try_acquire(at(secs(70))), Ok(()));
        }
        // 70 s after midnight: the next minute starts at 120 s.
        let wait = w.try_acquire(at(secs(70))).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50) + WINDOW_MARGIN);
        // A refusal spends nothing.
        assert_eq!(w.remaining(at(secs(70))).day, 2990);
        assert_eq!(w.try_acquire(at(secs(120) + 50)), Ok(()));
    }

    #[test]
    fn no_call_is_granted_in_the_guard_band_at_the_end_of_a_minute() {
        let mut w = windows(60, 3000);
        let last_ok = secs(60) - GUARD.as_millis() as u64 - 1;
        assert_eq!(w.try_acquire(at(last_ok)), Ok(()));
        let in_guard = secs(60) - GUARD.as_millis() as u64;
        assert_eq!(w.try_acquire(at(in_guard)), Err(GUARD + WINDOW_MARGIN));
        assert_eq!(
            w.try_acquire(at(secs(60) - 100)),
            Err(Duration::from_millis(100) + WINDOW_MARGIN)
        );
        assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
    }

    #[test]
    fn a_spent_day_budget_waits_until_utc_midnight() {
        let mut w = windows(60, 100);
        for _ in 0..60 {
            assert_eq!(w.try_acquire(at(secs(0))), Ok(()));
        }
        for _ in 0..40 {
            assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
        }
        // Minute 2 has a fresh minute budget, but the day is spent.
        let now_ms = secs(2 * 60 + 5);
        let wait = w.try_acquire(at(now_ms)).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_millis(secs(DAY_SECS) - now_ms) + WINDOW_MARGIN
        );
        assert_eq!(w.remaining(at(now_ms)), Remaining { minute: 60, day: 0 });
        assert_eq!(w.day_resets_at(at(now_ms)), at(secs(DAY_SECS)));
        // Next UTC day: both budgets are back.
        assert_eq!(w.day_resets_at(at(secs(DAY_SECS))), at(secs(2 * DAY_SECS)));
        assert_eq!(w.try_acquire(at(secs(DAY_SECS))), Ok(()));
        assert_eq!(
            w.remaining(at(secs(DAY_SECS))),
            Remaining {
                minute: 59,
                day: 99
            }
        );
    }

    #[test]
    fn observing_a_smaller_remaining_reduces_the_budget() {
        let mut w = windows(60, 3000);
        let now = at(secs(5));
        assert_eq!(w.try_acquire(now), Ok(()));
        // Someone else shares our key: the upstream says 50 left this minute, 2000 today.
        w.observe(now, reported(Some(50), Some(2000)));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 50,
                day: 2000
            }
        );
        // A larger remaining (a stale header) never gives budget back.
        w.observe(now, reported(Some(59), Some(2999)));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 50,
                day: 2000
            }
        );
        // Headers may be missing.
        w.observe(now, reported(None, None));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 50,
                day: 2000
            }
        );
    }

    #[test]
    fn a_negative_remaining_counts_the_window_as_more_than_spent() {
        let mut w = windows(60, 3000);
        let now = at(secs(5));
        w.observe(now, reported(Some(-3), None));
        assert_eq!(w.remaining(now).minute, 0);
        assert_eq!(
            w.try_acquire(now),
            Err(Duration::from_secs(55) + WINDOW_MARGIN)
        );
        // Extreme values do not overflow.
        w.observe(now, reported(Some(i64::MIN), Some(i64::MAX)));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 0,
                day: 3000
            }
        );
        w.observe(now, reported(None, Some(-1)));
        assert!(w.try_acquire(now).unwrap_err() > Duration::from_secs(80_000));
    }

    #[test]
    fn a_429_pauses_until_the_next_minute_window() {
        let mut w = windows(60, 3000);
        let now = at(secs(3 * 60 + 20));
        assert_eq!(w.try_acquire(now), Ok(()));
        w.rate_limited(now);
        assert_eq!(
            w.try_acquire(now),
            Err(Duration::from_secs(40) + WINDOW_MARGIN)
        );
        assert_eq!(w.check(at(secs(4 * 60))), Ok(()));
        assert_eq!(w.try_acquire(at(secs(4 * 60))), Ok(()));
    }

    #[test]
    fn a_new_minute_resets_the_minute_count_but_not_the_day_count() {
        let mut w = windows(60, 3000);
        for _ in 0..30 {
            assert_eq!(w.try_acquire(at(secs(10))), Ok(()));
        }
        assert_eq!(
            w.remaining(at(secs(61))),
            Remaining {
                minute: 60,
                day: 2970
            }
        );
        assert_eq!(w.try_acquire(at(secs(61))), Ok(()));
        assert_eq!(
            w.remaining(at(secs(61))),
            Remaining {
                minute: 59,
                day: 2969
            }
        );
    }

    #[test]
    fn a_wall_clock_stepping_back_keeps_the_newer_count() {
        let mut w = windows(2, 3000);
        assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
        assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
        // NTP steps the clock back into the previous minute: still spent.
        assert!(w.try_acquire(at(secs(59) - 500)).is_err());
        assert_eq!(w.try_acquire(at(secs(120))), Ok(()));
    }
}
