//! The wall clock the rate windows read: the system time plus an adjustable offset, cheap to
//! clone (clones share the offset). `Settings::clock` hands one to the `RateLimiter` and the
//! demo fixture upstream, so both count OpenDota's calendar-minute windows on the same "now".
//!
//! In production the offset stays zero. Tests move "now" (e.g. to 300 ms before a minute
//! boundary) so a wait for the next window is short in real time; callers that sleep until a
//! window opens watch [`Clock::subscribe`] and ask again when the clock is moved. Unit tests can
//! use a [`Clock::fixed`] clock that stands still at a chosen instant.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// A wall clock: system time (or a fixed instant) plus a shared offset. Clones share it.
#[derive(Clone)]
pub struct Clock {
    /// `None`: the system clock; `Some(t)`: a clock standing still at `t` (plus the offset).
    base: Option<SystemTime>,
    /// Nanoseconds added to the base; signed so a test may also move "now" back.
    offset_ns: Arc<watch::Sender<i128>>,
}

impl Clock {
    /// The system wall clock, not shifted.
    pub fn system() -> Self {
        Self::with_base(None)
    }

    /// A clock standing still at `at` until moved with [`Clock::set`] or [`Clock::advance`].
    pub fn fixed(at: SystemTime) -> Self {
        Self::with_base(Some(at))
    }

    fn with_base(base: Option<SystemTime>) -> Self {
        Self {
            base,
            offset_ns: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The current time on this clock.
    pub fn now(&self) -> SystemTime {
        shift(self.base_now(), *self.offset_ns.borrow())
    }

    /// Moves this clock (and every clone) so that it reads `now` at this instant; a system
    /// clock then runs on from there.
    pub fn set(&self, now: SystemTime) {
        let base = self.base_now();
        let offset = match now.duration_since(base) {
            Ok(ahead) => nanos(ahead),
            Err(behind) => -nanos(behind.duration()),
        };
        self.offset_ns.send_replace(offset);
    }

    /// Moves this clock (and every clone) forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ns.send_modify(|offset| *offset += nanos(by));
    }

    /// Watches for the clock being moved ([`Clock::set`] or [`Clock::advance`]) from now on.
    /// A caller that reads the clock and then sleeps until a window opens subscribes *before*
    /// reading it, and selects on [`ClockMoves::moved`], so a moved clock takes effect at once
    /// instead of after the old sleep.
    pub fn subscribe(&self) -> ClockMoves {
        ClockMoves {
            rx: self.offset_ns.subscribe(),
        }
    }

    fn base_now(&self) -> SystemTime {
        self.base.unwrap_or_else(SystemTime::now)
    }
}

/// A subscription to moves of a [`Clock`], from [`Clock::subscribe`].
pub struct ClockMoves {
    rx: watch::Receiver<i128>,
}

impl ClockMoves {
    /// Resolves when the clock has been moved since the subscription (or the last `moved`);
    /// never resolves for a clock nobody moves.
    pub async fn moved(&mut self) {
        // Fails only when every clone of the clock is gone: then it can never move.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock")
            .field("fixed", &self.base.is_some())
            .field("offset_ns", &*self.offset_ns.borrow())
            .finish()
    }
}

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// `at` moved by `offset_ns`; saturates instead of overflowing `SystemTime`.
fn shift(at: SystemTime, offset_ns: i128) -> SystemTime {
    let magnitude =
        Duration::from_nanos(u64::try_from(offset_ns.unsigned_abs()).unwrap_or(u64::MAX));
    let moved = if offset_ns >= 0 {
        at.checked_add(magnitude)
    } else {
        at.checked_sub(magnitude)
    };
    moved.unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_and_moves_only_when_told() {
        let at = UNIX_EPOCH + Duration::from_secs(1_728_000_010);
        let clock = Clock::fixed(at);
        assert_eq!(clock.now(), at);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), at + Duration::from_millis(1500));
        clock.set(at - Duration::from_secs(5));
        assert_eq!(clock.now(), at - Duration::from_secs(5));
    }

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::system();
        let clone = clock.clone();
        let target = SystemTime::now() + Duration::from_secs(3600);
        clock.set(target);
        let read = clone.now();
        assert!(read >= target && read < target + Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_subscription_sees_a_move_made_after_it() {
        let clock = Clock::fixed(UNIX_EPOCH);
        let mut moves = clock.subscribe();
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), moves.moved())
            .await
            .expect("the move is seen");
        let nothing = tokio::time::timeout(Duration::from_millis(20), moves.moved()).await;
        assert!(nothing.is_err(), "no further move, nothing to see");
    }
}
