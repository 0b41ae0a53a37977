//! Pure budget bookkeeping behind the [`RateLimiter`](super::rate_limiter::RateLimiter) actor,
//! with the clock passed in so every rule is unit-tested at exact instants. It owns no time
//! source of its own: [`FixedWindows`] takes the wall-clock time on each call, [`SteadySpacing`]
//! takes a `governor` clock at construction. Only the rate limiter actor calls into it.
//!
//! Two upstreams, two shapes of budget:
//! - **OpenDota** counts calls per fixed calendar window — the UTC minute (`unix_secs / 60`) and
//!   the UTC day (`unix_secs / 86400`) — and reports what is left in response headers.
//!   [`FixedWindows`] tracks the same windows, spends a window's budget as fast as work arrives,
//!   and stays in step with the upstream's own count.
//! - **Dotabuff** publishes no budget; it is scraped HTML behind bot protection that objects to
//!   bursts. [`SteadySpacing`] spaces calls evenly with `governor` (GCRA, burst 1).

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::Quota;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};

/// Length of the upstream's minute window in seconds.
const MINUTE_SECS: u64 = 60;

/// Length of the upstream's day window in seconds. Unix time has no leap seconds, so
/// `unix_secs / 86400` is exactly the UTC calendar day.
const DAY_SECS: u64 = 86_400;

/// No grants in the last `GUARD` of a minute window. A call granted at 59.9 s spends some time in
/// our mailbox, the HTTP client and the network, and may be counted by the upstream in the *next*
/// window, on top of that window's full budget. 300 ms covers a request's usual time to reach the
/// upstream and modest clock skew; it costs at most 0.5 % of each minute. The day boundary is also
/// a minute boundary, so the day needs no guard of its own.
pub const GUARD: Duration = Duration::from_millis(300);

/// Added to every wait that ends at a window start, so a caller woken by it lands safely inside
/// the new window even if its timer fires a little early or our clock runs slightly ahead of the
/// upstream's.
pub const WINDOW_MARGIN: Duration = Duration::from_millis(50);

/// Shortest wait [`SteadySpacing`] hands out. `governor` may compute a zero wait when the slot
/// opens between its decision and our reading of the clock; a zero `Wait` would make a caller
/// spin, so it is raised to this.
pub const MIN_WAIT: Duration = Duration::from_millis(1);

/// Time since the unix epoch. A clock set before 1970 is broken beyond repair; treating it as the
/// epoch keeps the arithmetic total (the budget still holds, windows just never roll).
fn since_epoch(now: SystemTime) -> Duration {
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// One calendar-aligned counting window (a UTC minute or a UTC day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Window length in seconds.
    len_secs: u64,
    /// Index (`unix_secs / len_secs`) of the window `used` belongs to.
    index: u64,
    /// Calls counted in window `index`: our own grants, or more if the upstream said so.
    used: u32,
}

impl Window {
    fn new(len_secs: u64) -> Self {
        Window {
            len_secs,
            index: 0,
            used: 0,
        }
    }

    fn index_at(&self, t: Duration) -> u64 {
        t.as_secs() / self.len_secs
    }

    fn start_of(&self, index: u64) -> Duration {
        Duration::from_secs(index.saturating_mul(self.len_secs))
    }

    /// Calls counted in window `index`. A newer window starts from zero. An *older* index means
    /// the wall clock stepped back; we keep counting against the newest window we have seen,
    /// which can only make us more careful, never overspend.
    fn used_in(&self, index: u64) -> u32 {
        if index > self.index { 0 } else { self.used }
    }

    /// Moves to window `index` if it is newer than the one we count in.
    fn roll_to(&mut self, index: u64) {
        if index > self.index {
            self.index = index;
            self.used = 0;
        }
    }

    /// Raises the count to at least `used` (never lowers it: our own grants may not have reached
    /// the upstream yet when it answered).
    fn raise_to(&mut self, used: u32) {
        self.used = self.used.max(used);
    }

    /// Time from `t` until the next window starts, plus [`WINDOW_MARGIN`].
    fn wait_for_next(&self, t: Duration) -> Duration {
        let next = self.start_of(self.index_at(t).saturating_add(1));
        next.saturating_sub(t) + WINDOW_MARGIN
    }
}

/// How much of each window is left at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    /// Calls left in the current UTC minute.
    pub minute: u32,
    /// Calls left in the current UTC day.
    pub day: u32,
}

/// OpenDota's budget: calls per UTC minute and per UTC day, counted the way the upstream counts
/// them.
///
/// Invariants: within one minute window at most `per_minute` grants, within one day window at most
/// `per_day` grants, and none in the last [`GUARD`] of a minute. There is no even spacing: a burst
/// of work is granted at once, up to what is left.
///
/// Keeping in step: after each response [`observe`](Self::observe) raises the counts to
/// `limit - remaining` as reported by the upstream (other clients sharing our key or IP, restarts
/// of this service). A response that crosses a window boundary is counted against the window it
/// arrives in; that can only over-count, costing at most the rest of that minute, which the day
/// budget (on average ~2 calls a minute) makes cheap.
#[derive(Debug, Clone)]
pub struct FixedWindows {
    per_minute: u32,
    per_day: u32,
    minute: Window,
    day: Window,
}

impl FixedWindows {
    /// A budget of `per_minute` calls per UTC minute and `per_day` per UTC day, nothing spent yet.
    pub fn new(per_minute: u32, per_day: u32) -> Self {
        FixedWindows {
            per_minute,
            per_day,
            minute: Window::new(MINUTE_SECS),
            day: Window::new(DAY_SECS),
        }
    }

    /// The configured calls per UTC minute.
    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// The configured calls per UTC day.
    pub fn per_day(&self) -> u32 {
        self.per_day
    }

    /// Whether a call could be granted at `now`, without spending anything. `Err` carries how
    /// long to wait: until the next UTC day if the day is spent, else until the next minute if
    /// the minute is spent or `now` is in the guard band (each plus [`WINDOW_MARGIN`]).
    pub fn check(&self, now: SystemTime) -> Result<(), Duration> {
        let t = since_epoch(now);
        if self.day.used_in(self.day.index_at(t)) >= self.per_day {
            return Err(self.day.wait_for_next(t));
        }
        let minute_index = self.minute.index_at(t);
        let left_in_minute = self
            .minute
            .start_of(minute_index.saturating_add(1))
            .saturating_sub(t);
        if self.minute.used_in(minute_index) >= self.per_minute || left_in_minute <= GUARD {
            return Err(self.minute.wait_for_next(t));
        }
        Ok(())
    }

    /// Grants one call at `now` and counts it in both windows, or says how long to wait (see
    /// [`check`](Self::check)); a refusal spends nothing.
    pub fn try_acquire(&mut self, now: SystemTime) -> Result<(), Duration> {
        self.check(now)?;
        self.roll(now);
        self.minute.used = self.minute.used.saturating_add(1);
        self.day.used = self.day.used.saturating_add(1);
        Ok(())
    }

    /// Takes in the upstream's remaining counts from a response received at `now`: each window's
    /// count becomes `max(own count, limit - remaining)`. `remaining` may be negative (the upstream
    /// let calls through beyond the limit); then the window counts as more than spent.
    pub fn observe(
        &mut self,
        now: SystemTime,
        remaining_minute: Option<i64>,
        remaining_day: Option<i64>,
    ) {
        self.roll(now);
        if let Some(remaining) = remaining_minute {
            self.minute
                .raise_to(used_from_remaining(self.per_minute, remaining));
        }
        if let Some(remaining) = remaining_day {
            self.day
                .raise_to(used_from_remaining(self.per_day, remaining));
        }
    }

    /// The upstream answered 429 at `now`: the current minute counts as spent, so the next grant
    /// comes at the next minute window (or the next day, if the day is spent too).
    pub fn rate_limited(&mut self, now: SystemTime) {
        self.roll(now);
        self.minute.raise_to(self.per_minute);
    }

    /// What is left in the minute and day windows that contain `now`.
    pub fn remaining(&self, now: SystemTime) -> Remaining {
        let t = since_epoch(now);
        Remaining {
            minute: self
                .per_minute
                .saturating_sub(self.minute.used_in(self.minute.index_at(t))),
            day: self
                .per_day
                .saturating_sub(self.day.used_in(self.day.index_at(t))),
        }
    }

    /// When the UTC day that contains `now` ends: the next UTC midnight, where the day budget
    /// is whole again.
    pub fn day_resets_at(&self, now: SystemTime) -> SystemTime {
        let t = since_epoch(now);
        UNIX_EPOCH + self.day.start_of(self.day.index_at(t).saturating_add(1))
    }

    fn roll(&mut self, now: SystemTime) {
        let t = since_epoch(now);
        self.minute.roll_to(self.minute.index_at(t));
        self.day.roll_to(self.day.index_at(t));
    }
}

/// `limit - remaining`, clamped to what a `u32` count can hold.
fn used_from_remaining(limit: u32, remaining: i64) -> u32 {
    let used = i64::from(limit).saturating_sub(remaining);
    u32::try_from(used.max(0)).unwrap_or(u32::MAX)
}

/// The `governor` limiter [`SteadySpacing`] wraps: one in-memory cell, no middleware.
type Gcra<C> =
    governor::RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Dotabuff's budget: calls spaced evenly, `per_minute` a minute, never two at once.
///
/// Why `governor` (GCRA) here and not for OpenDota: GCRA spaces calls evenly over a rolling
/// period, which is exactly what a scraped site that punishes bursts wants. It has no notion of
/// calendar-aligned windows, and no way to take in a remaining budget reported by the upstream,
/// so for OpenDota it would both waste budget (spacing 50 queued calls over 50 seconds that the
/// upstream would accept at once) and drift out of step with the upstream's count.
/// [`FixedWindows`] handles that side.
///
/// `C` is the `governor` clock: monotonic [`DefaultClock`] in service, a fake clock in tests.
pub struct SteadySpacing<C: Clock = DefaultClock> {
    per_minute: NonZeroU32,
    limiter: Gcra<C>,
    /// When the next call could go, as of the last decision; only read for snapshots, since
    /// `governor` cannot be asked without spending a cell.
    ready_at: Option<C::Instant>,
    /// No grants before this instant (set after a 429).
    paused_until: Option<C::Instant>,
}

impl SteadySpacing<DefaultClock> {
    /// `per_minute` calls a minute, evenly spaced, on the monotonic clock.
    pub fn new(per_minute: NonZeroU32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock> SteadySpacing<C> {
    /// `per_minute` calls a minute, evenly spaced, on `clock`.
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(NonZeroU32::MIN);
        SteadySpacing {
            per_minute,
            limiter: governor::RateLimiter::direct_with_clock(quota, clock),
            ready_at: None,
            paused_until: None,
        }
    }

    /// The configured calls per minute.
    pub fn per_minute(&self) -> u32 {
        self.per_minute.get()
    }

    /// Grants one call now, or says how long to wait (at least [`MIN_WAIT`]).
    pub fn try_acquire(&mut self) -> Result<(), Duration> {
        let now = self.limiter.clock().now();
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return Err(Duration::from(until.duration_since(now)).max(MIN_WAIT));
        }
        match self.limiter.check() {
            Ok(()) => {
                let interval = Quota::per_minute(self.per_minute).replenish_interval();
                self.ready_at = Some(now + Nanos::from(interval));
                Ok(())
            }
            Err(not_until) => {
                self.ready_at = Some(not_until.earliest_possible());
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Err(wait.max(MIN_WAIT))
            }
        }
    }

    /// Grants nothing for `cooldown` from now (the upstream objected).
    pub fn pause(&mut self, cooldown: Duration) {
        let until = self.limiter.clock().now() + Nanos::from(cooldown);
        self.paused_until = Some(self.paused_until.map_or(until, |old| old.max(until)));
    }

    /// How long until a call could go; zero if one could go now.
    pub fn wait(&self) -> Duration {
        let now = self.limiter.clock().now();
        [self.ready_at, self.paused_until]
            .into_iter()
            .flatten()
            .map(|at| Duration::from(at.duration_since(now)))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

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
        let mut w = FixedWindows::new(60, 3000);
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
        let mut w = FixedWindows::new(10, 3000);
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
        let mut w = FixedWindows::new(60, 3000);
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
        let mut w = FixedWindows::new(60, 100);
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
        let mut w = FixedWindows::new(60, 3000);
        let now = at(secs(5));
        assert_eq!(w.try_acquire(now), Ok(()));
        // Someone else shares our key: the upstream says 50 left this minute, 2000 today.
        w.observe(now, Some(50), Some(2000));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 50,
                day: 2000
            }
        );
        // A larger remaining (a stale header) never gives budget back.
        w.observe(now, Some(59), Some(2999));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 50,
                day: 2000
            }
        );
        // Headers may be missing.
        w.observe(now, None, None);
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
        let mut w = FixedWindows::new(60, 3000);
        let now = at(secs(5));
        w.observe(now, Some(-3), None);
        assert_eq!(w.remaining(now).minute, 0);
        assert_eq!(
            w.try_acquire(now),
            Err(Duration::from_secs(55) + WINDOW_MARGIN)
        );
        // Extreme values do not overflow.
        w.observe(now, Some(i64::MIN), Some(i64::MAX));
        assert_eq!(
            w.remaining(now),
            Remaining {
                minute: 0,
                day: 3000
            }
        );
        w.observe(now, None, Some(-1));
        assert!(w.try_acquire(now).unwrap_err() > Duration::from_secs(80_000));
    }

    #[test]
    fn a_429_pauses_until_the_next_minute_window() {
        let mut w = FixedWindows::new(60, 3000);
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
        let mut w = FixedWindows::new(60, 3000);
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
        let mut w = FixedWindows::new(2, 3000);
        assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
        assert_eq!(w.try_acquire(at(secs(60))), Ok(()));
        // NTP steps the clock back into the previous minute: still spent.
        assert!(w.try_acquire(at(secs(59) - 500)).is_err());
        assert_eq!(w.try_acquire(at(secs(120))), Ok(()));
    }

    #[test]
    fn dotabuff_calls_are_spaced_evenly_without_bursts() {
        let clock = FakeRelativeClock::default();
        let per_minute = NonZeroU32::new(30).unwrap();
        let mut s = SteadySpacing::with_clock(per_minute, clock.clone());
        assert_eq!(s.wait(), Duration::ZERO);
        assert_eq!(s.try_acquire(), Ok(()));
        // 30 a minute: one every 2 s, no burst even though nothing was spent before.
        assert_eq!(s.try_acquire(), Err(Duration::from_secs(2)));
        assert_eq!(s.wait(), Duration::from_secs(2));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(s.try_acquire(), Err(Duration::from_millis(500)));
        clock.advance(Duration::from_millis(500));
        assert_eq!(s.wait(), Duration::ZERO);
        assert_eq!(s.try_acquire(), Ok(()));
    }

    #[test]
    fn a_dotabuff_pause_holds_off_every_call_until_it_ends() {
        let clock = FakeRelativeClock::default();
        let mut s = SteadySpacing::with_clock(NonZeroU32::new(30).unwrap(), clock.clone());
        s.pause(Duration::from_secs(60));
        assert_eq!(s.try_acquire(), Err(Duration::from_secs(60)));
        assert_eq!(s.wait(), Duration::from_secs(60));
        clock.advance(Duration::from_secs(60));
        assert_eq!(s.try_acquire(), Ok(()));
    }
}
