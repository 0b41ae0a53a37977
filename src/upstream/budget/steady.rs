//! Even spacing for an upstream that publishes no budget and objects to bursts (Dotabuff: scraped
//! HTML behind bot protection). [`SteadySpacing`] spaces calls evenly with `governor` (GCRA,
//! burst 1) on a monotonic clock, taken at construction so tests can pass a fake one.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};

/// Shortest wait [`SteadySpacing`] hands out. `governor` may compute a zero wait when the slot
/// opens between its decision and our reading of the clock; a zero `Wait` would make a caller
/// spin, so it is raised to this.
pub const MIN_WAIT: Duration = Duration::from_millis(1);

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
/// [`FixedWindows`](super::fixed::FixedWindows) handles that side.
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
