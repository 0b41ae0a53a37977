//! Calendar windows, the one piece of time arithmetic every budget rule stands on: a [`Window`]
//! is a length (a second, a minute, an hour, a UTC day), and the window holding an instant is
//! `unix_secs / length`, the way OpenDota (and most upstreams that publish a budget) count. A
//! [`Count`] is the calls counted in one such window. Both the local budget and the shared
//! counters use these, so a window means the same thing on every side of the budget.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Added to every wait that ends at a window start, so a caller woken by it lands safely inside
/// the new window even if its timer fires a little early or our clock runs slightly ahead of the
/// upstream's.
pub const WINDOW_MARGIN: Duration = Duration::from_millis(50);

/// A calendar-aligned counting window. Unix time has no leap seconds, so every length divides
/// the UTC day evenly and `unix_secs / 86400` is exactly the UTC calendar day. Another length is
/// one more variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    Second,
    Minute,
    Hour,
    /// The UTC calendar day.
    Day,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Second, Window::Minute, Window::Hour, Window::Day];

    /// Length in seconds.
    pub const fn len_secs(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    /// Its name in metric labels and counter subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// Index (`unix_secs / len`) of the window holding `now`.
    pub fn index_at(self, now: SystemTime) -> u64 {
        since_epoch(now).as_secs() / self.len_secs()
    }

    /// When the window after the one holding `now` starts.
    pub fn ends_at(self, now: SystemTime) -> SystemTime {
        UNIX_EPOCH + self.next_start(since_epoch(now))
    }

    /// Time from `now` until the window holding it ends.
    pub fn left_at(self, now: SystemTime) -> Duration {
        let t = since_epoch(now);
        self.next_start(t).saturating_sub(t)
    }

    /// Time from `now` until the next window starts, plus [`WINDOW_MARGIN`] so a caller woken by
    /// it lands inside the new window.
    pub fn wait_for_next(self, now: SystemTime) -> Duration {
        self.left_at(now) + WINDOW_MARGIN
    }

    /// Start of the window after the one holding `t` (time since the epoch).
    fn next_start(self, t: Duration) -> Duration {
        let next = (t.as_secs() / self.len_secs()).saturating_add(1);
        Duration::from_secs(next.saturating_mul(self.len_secs()))
    }
}

/// Time since the unix epoch. A clock set before 1970 is broken beyond repair; treating it as the
/// epoch keeps the arithmetic total (the budget still holds, windows just never roll).
fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Calls counted in the newest window of one length seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Index of the window `used` belongs to.
    index: u64,
    /// Calls counted in window `index`.
    used: u32,
}

impl Count {
    /// Calls counted in window `index`. A newer window starts from zero. An *older* index means
    /// the wall clock stepped back; we keep counting against the newest window we have seen,
    /// which can only make us more careful, never overspend.
    pub fn used_in(self, index: u64) -> u32 {
        if index > self.index { 0 } else { self.used }
    }

    /// Moves to window `index` if it is newer than the one we count in.
    pub fn roll_to(&mut self, index: u64) {
        if index > self.index {
            *self = Count { index, used: 0 };
        }
    }

    /// Counts one call in window `index` (or in the newer one counted already).
    pub fn add_one(&mut self, index: u64) {
        self.add(index, 1);
    }

    /// Counts `n` calls in window `index` (or in the newer one counted already).
    pub fn add(&mut self, index: u64, n: u32) {
        self.roll_to(index);
        self.used = self.used.saturating_add(n);
    }

    /// The calls counted in window `index` (as [`Count::used_in`]), leaving none counted there.
    pub fn take(&mut self, index: u64) -> u32 {
        let used = self.used_in(index);
        self.roll_to(index);
        self.used = 0;
        used
    }

    /// Raises the count to at least `used` (never lowers it: our own grants may not have reached
    /// the upstream yet when it answered).
    pub fn raise_to(&mut self, used: u32) {
        self.used = self.used.max(used);
    }
}

/// Calls the upstream has seen in a window of `limit` when it reports `remaining` left:
/// `limit - remaining`. `remaining` may be negative (it let calls through beyond the limit).
pub fn seen_by_upstream(limit: u32, remaining: i64) -> i64 {
    i64::from(limit).saturating_sub(remaining)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `secs_after` 2024-10-04T00:00:00Z, a UTC midnight (so also the start of a minute and an
    /// hour): `at(10)` is 10 s into a minute and into a day.
    pub(crate) fn at(secs_after: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_728_000_000 + secs_after)
    }

    #[test]
    fn a_refused_caller_waits_for_the_next_window_plus_the_margin() {
        assert_eq!(
            Window::Minute.wait_for_next(at(10)),
            Duration::from_secs(50) + WINDOW_MARGIN
        );
        assert_eq!(
            Window::Day.wait_for_next(at(10)),
            Duration::from_secs(86_390) + WINDOW_MARGIN
        );
    }

    #[test]
    fn windows_of_every_length_are_calendar_aligned() {
        let now = at(3_725) + Duration::from_millis(400);
        assert_eq!(Window::Second.left_at(now), Duration::from_millis(600));
        assert_eq!(Window::Minute.left_at(now), Duration::from_millis(54_600));
        assert_eq!(Window::Hour.left_at(now), Duration::from_millis(3_474_600));
        assert_eq!(Window::Hour.ends_at(now), at(7_200));
        assert_eq!(Window::Day.ends_at(now), at(86_400));
        assert_eq!(Window::Minute.index_at(at(60)), 28_800_001);
        assert_eq!(Window::Day.index_at(now), 20_000);
    }

    #[test]
    fn a_count_keeps_the_newest_window() {
        let mut count = Count::default();
        count.add_one(5);
        count.add_one(5);
        assert_eq!(
            (count.used_in(5), count.used_in(4), count.used_in(6)),
            (2, 2, 0)
        );
        count.raise_to(1);
        assert_eq!(count.used_in(5), 2);
        count.add_one(4);
        assert_eq!(
            count.used_in(5),
            3,
            "a clock stepped back counts in the newer window"
        );
        count.roll_to(6);
        assert_eq!(count.used_in(6), 0);
        assert_eq!(seen_by_upstream(10, -2), 12);
    }
}
