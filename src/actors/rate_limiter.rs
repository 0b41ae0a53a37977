//! The `RateLimiter` actor: the one owner of this process's upstream call budget, a
//! [`LocalBudget`] (every rule is in `upstream::budget`; this file only passes messages and
//! "now" in). The upstream client reaches it through [`LimiterBudget`], its implementation of
//! the client's [`Budget`]: a grant before each OpenDota or Dotabuff call ([`Acquire`], with the
//! waits slept outside the actor), what the upstream said about its budget afterwards
//! ([`Observe`], [`RateLimited`]). The HTTP status route and the reserve gate read [`Snapshot`].
//!
//! A grant is never queued here: a caller that must wait is told how long and asks again, so the
//! actor holds no timers and a slow caller cannot hold up others.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use futures::future::BoxFuture;

use crate::clock::Clock;
use crate::config::RateLimits;
use crate::domain::Service;
use crate::upstream::budget::limits::Limits;
use crate::upstream::budget::reserve::ReadBudgets;
use crate::upstream::budget::{
    Budget, BudgetSnapshot, BudgetUnavailable, Grant, LocalBudget, Remaining, wait,
};

/// Ask for one upstream call to `service`. Answered at once with [`Grant`]; nothing is reserved
/// for a caller told to wait.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Grant")]
pub struct Acquire {
    /// The upstream the call goes to.
    pub service: Service,
}

/// What the upstream reported about its budget in a response (OpenDota's
/// `X-Rate-Limit-Remaining-Minute` / `-Day` headers). Send after every response, 429s included.
/// Ignored for Dotabuff, which reports nothing.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Observe {
    /// The upstream that answered.
    pub service: Service,
    /// Calls left in the upstream's current minute window, if reported; may be negative.
    pub remaining_minute: Option<i64>,
    /// Calls left in the upstream's current day window, if reported; may be negative.
    pub remaining_day: Option<i64>,
}

/// The upstream answered 429 Too Many Requests. OpenDota: the current minute counts as spent
/// (grants resume in the next minute window, or the next UTC day if the day is spent too).
/// Dotabuff: no grants for `DOTABUFF_COOLDOWN`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct RateLimited {
    /// The upstream that refused.
    pub service: Service,
}

/// Read every service's budget, for the status route and tests.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<BudgetSnapshot>")]
pub struct Snapshot;

/// Bound on queued messages. Each fetch worker has at most one message in flight (it awaits the
/// answer), and workers are far fewer than this; a full mailbox makes `send().await` wait, which
/// is the back-pressure we want.
pub const MAILBOX_CAPACITY: usize = 64;

/// Owns the local budget and the wall clock its calendar windows read.
pub struct RateLimiter {
    budget: LocalBudget,
    /// Wall clock for OpenDota's calendar windows (`Settings::clock`). Dotabuff spacing uses
    /// `governor`'s monotonic clock, which no wall-clock step can disturb.
    clock: Clock,
}

impl RateLimiter {
    /// A limiter with nothing spent whose OpenDota windows read `clock` (the system clock in
    /// production; tests move it or pin it to chosen instants).
    pub fn new(limits: RateLimits, clock: Clock) -> Self {
        RateLimiter {
            budget: LocalBudget::new(&Limits::new(&limits)),
            clock,
        }
    }
}

impl Actor for RateLimiter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl actix::Supervised for RateLimiter {
    /// Nothing is reset: spent budgets, the Dotabuff spacing and pause, and the counters must
    /// survive a restart, or a restart would hand out budget the upstream has already counted.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::info!("rate limiter restarting; budgets and counters kept");
    }
}

impl Handler<Acquire> for RateLimiter {
    type Result = MessageResult<Acquire>;

    fn handle(&mut self, msg: Acquire, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.budget.acquire(msg.service, self.clock.now()))
    }
}

impl Handler<Observe> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Self::Context) {
        let reported = Remaining {
            minute: msg.remaining_minute,
            day: msg.remaining_day,
        };
        self.budget.observe(msg.service, self.clock.now(), reported);
    }
}

impl Handler<RateLimited> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: RateLimited, _ctx: &mut Self::Context) {
        self.budget.rate_limited(msg.service, self.clock.now());
    }
}

impl Handler<Snapshot> for RateLimiter {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _msg: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.budget.snapshot(self.clock.now()))
    }
}

impl ReadBudgets for Addr<RateLimiter> {
    fn read(&self) -> BoxFuture<'_, Result<Vec<BudgetSnapshot>, BudgetUnavailable>> {
        Box::pin(async move {
            self.send(Snapshot)
                .await
                .map_err(|e| BudgetUnavailable(Arc::new(e)))
        })
    }
}

/// The [`Budget`] the upstream client waits on, served by a [`RateLimiter`]. Cheap to clone.
#[derive(Clone)]
pub struct LimiterBudget {
    limiter: Addr<RateLimiter>,
    /// The limiter's clock: a waiting caller asks again as soon as it is moved.
    clock: Clock,
}

impl LimiterBudget {
    /// `clock` must be the one the limiter was built with.
    pub fn new(limiter: Addr<RateLimiter>, clock: Clock) -> Self {
        Self { limiter, clock }
    }

    async fn ask(&self, service: Service) -> Result<Grant, BudgetUnavailable> {
        self.limiter
            .send(Acquire { service })
            .await
            .map_err(|e| BudgetUnavailable(Arc::new(e)))
    }
}

impl Budget for LimiterBudget {
    /// Asks until granted (see [`wait::until_granted`]); fails only if the limiter is gone.
    fn acquire(&self, service: Service) -> BoxFuture<'_, Result<Duration, BudgetUnavailable>> {
        Box::pin(wait::until_granted(&self.clock, None, service, move || {
            self.ask(service)
        }))
    }

    fn observe(&self, service: Service, remaining: Remaining) {
        self.limiter.do_send(Observe {
            service,
            remaining_minute: remaining.minute,
            remaining_day: remaining.day,
        });
    }

    fn rate_limited(&self, service: Service) {
        self.limiter.do_send(RateLimited { service });
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, UNIX_EPOCH};

    use super::*;
    use crate::upstream::budget::local::DOTABUFF_COOLDOWN;
    use crate::upstream::budget::window::WINDOW_MARGIN;

    /// A clock standing 10 s into a UTC minute, far from both window edges.
    fn ten_seconds_into_a_minute() -> Clock {
        Clock::fixed(UNIX_EPOCH + Duration::from_secs(1_728_000_010))
    }

    fn limits(opendota_per_minute: u32, dotabuff_per_minute: u32) -> RateLimits {
        RateLimits {
            opendota_per_minute,
            opendota_per_day: 3000,
            dotabuff_per_minute,
        }
    }

    fn find(snapshots: &[BudgetSnapshot], service: Service) -> &BudgetSnapshot {
        snapshots
            .iter()
            .find(|s| s.service == service)
            .expect("every service has a snapshot")
    }

    #[actix_rt::test]
    async fn grants_never_exceed_the_limit_and_the_snapshot_counts_them() {
        // Real wall clock: a minute boundary may fall mid-test, so assert only what holds anyway.
        let limiter = RateLimiter::new(limits(10, 30), Clock::system()).start();
        let mut granted = 0u64;
        let mut waits = 0u64;
        for _ in 0..10 {
            match limiter
                .send(Acquire {
                    service: Service::OpenDota,
                })
                .await
                .unwrap()
            {
                Grant::Granted => granted += 1,
                Grant::Wait(wait) => {
                    assert!(wait <= Duration::from_secs(60) + WINDOW_MARGIN);
                    waits += 1;
                }
            }
        }
        assert!(granted <= 10);
        let snapshots = limiter.send(Snapshot).await.unwrap();
        let opendota = find(&snapshots, Service::OpenDota);
        assert_eq!(opendota.granted_total, granted);
        assert_eq!(opendota.waits_total, waits);
        assert_eq!(opendota.limit_per_minute, 10);
        assert_eq!(opendota.limit_per_day, Some(3000));
        // Grants may straddle two minutes (or UTC days), so at least this much is left.
        assert!(u64::from(opendota.remaining_minute) >= 10 - granted);
        assert!(
            opendota
                .remaining_day
                .is_some_and(|day| u64::from(day) >= 3000 - granted)
        );
    }

    #[actix_rt::test]
    async fn opendota_grants_a_burst_at_once_then_waits_for_the_next_minute() {
        let limiter = RateLimiter::new(limits(10, 30), ten_seconds_into_a_minute()).start();
        for i in 0..10 {
            let grant = limiter
                .send(Acquire {
                    service: Service::OpenDota,
                })
                .await
                .unwrap();
            assert_eq!(grant, Grant::Granted, "call {i}");
        }
        let grant = limiter
            .send(Acquire {
                service: Service::OpenDota,
            })
            .await
            .unwrap();
        assert_eq!(grant, Grant::Wait(Duration::from_secs(50) + WINDOW_MARGIN));

        let snapshots = limiter.send(Snapshot).await.unwrap();
        let opendota = find(&snapshots, Service::OpenDota);
        assert_eq!(opendota.remaining_minute, 0);
        assert_eq!(opendota.remaining_day, Some(2990));
        let day = opendota.day.as_ref().expect("OpenDota has a day budget");
        assert_eq!((day.remaining, day.spent_until()), (2990, None));
        assert_eq!(opendota.paused_for_ms, 50_050);
        assert_eq!((opendota.granted_total, opendota.waits_total), (10, 1));
    }

    #[actix_rt::test]
    async fn observed_headers_and_429s_shrink_the_opendota_budget() {
        let limiter = RateLimiter::new(limits(60, 30), ten_seconds_into_a_minute()).start();
        let observe = Observe {
            service: Service::OpenDota,
            remaining_minute: Some(5),
            remaining_day: Some(-2),
        };
        limiter.send(observe).await.unwrap();
        let snapshots = limiter.send(Snapshot).await.unwrap();
        let opendota = find(&snapshots, Service::OpenDota);
        assert_eq!(opendota.remaining_minute, 5);
        assert_eq!(opendota.remaining_day, Some(0));
        // Day spent: the wait runs to the next UTC midnight, and the snapshot says when.
        assert!(opendota.paused_for_ms > 80_000_000);
        let day = opendota.day.as_ref().expect("OpenDota has a day budget");
        assert_eq!((day.limit, day.remaining), (3000, 0));
        assert_eq!(day.spent_until(), Some("2024-10-05T00:00:00Z"));
        let json = serde_json::to_value(opendota).unwrap();
        assert_eq!(json["day"]["resetsAt"], "2024-10-05T00:00:00Z");
        assert_eq!(json["day"]["remaining"], 0);

        let limiter = RateLimiter::new(limits(60, 30), ten_seconds_into_a_minute()).start();
        limiter
            .send(RateLimited {
                service: Service::OpenDota,
            })
            .await
            .unwrap();
        let grant = limiter
            .send(Acquire {
                service: Service::OpenDota,
            })
            .await
            .unwrap();
        assert_eq!(grant, Grant::Wait(Duration::from_secs(50) + WINDOW_MARGIN));
    }

    #[actix_rt::test]
    async fn dotabuff_calls_are_spaced_and_serialize_as_documented() {
        // 600 a minute: one every 100 ms.
        let clock = Clock::system();
        let limiter = RateLimiter::new(limits(60, 600), clock.clone()).start();
        let budget = LimiterBudget::new(limiter.clone(), clock);
        let started = Instant::now();
        assert_eq!(
            budget.acquire(Service::Dotabuff).await.unwrap(),
            Duration::ZERO
        );
        let waited = budget.acquire(Service::Dotabuff).await.unwrap();
        // However slow the machine, two grants are at least one spacing apart.
        assert!(started.elapsed() >= Duration::from_millis(90));
        // One told wait of at most the spacing, plus at most a few `MIN_WAIT` retries if the
        // timer and governor's clock disagree by a hair.
        assert!(waited < Duration::from_millis(150));

        let snapshots = limiter.send(Snapshot).await.unwrap();
        let dotabuff = find(&snapshots, Service::Dotabuff);
        assert_eq!(dotabuff.granted_total, 2);
        assert_eq!(dotabuff.limit_per_day, None);
        let json = serde_json::to_value(dotabuff).unwrap();
        assert_eq!(json["service"], "dotabuff");
        assert_eq!(json["limitPerMinute"], 600);
        assert!(json["remainingDay"].is_null());
        assert!(json["day"].is_null());
        assert!(json.get("pausedForMs").is_some());
    }

    #[actix_rt::test]
    async fn a_caller_waiting_for_the_next_window_goes_as_soon_as_the_clock_reaches_it() {
        let clock = ten_seconds_into_a_minute();
        let limiter = RateLimiter::new(limits(1, 30), clock.clone()).start();
        let budget = LimiterBudget::new(limiter, clock.clone());
        assert_eq!(
            budget.acquire(Service::OpenDota).await.unwrap(),
            Duration::ZERO
        );
        let second = tokio::spawn({
            let budget = budget.clone();
            async move { budget.acquire(Service::OpenDota).await }
        });
        // Let it be told to wait ~50 s, then move the clock into the next minute window.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the minute's budget is spent");
        clock.advance(Duration::from_secs(51));
        let waited = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("granted long before the told wait")
            .unwrap()
            .unwrap();
        assert!(waited < Duration::from_secs(5));
    }

    #[actix_rt::test]
    async fn a_dotabuff_429_pauses_it_for_the_cooldown() {
        let limiter = RateLimiter::new(limits(60, 30), Clock::system()).start();
        limiter
            .send(RateLimited {
                service: Service::Dotabuff,
            })
            .await
            .unwrap();
        match limiter
            .send(Acquire {
                service: Service::Dotabuff,
            })
            .await
            .unwrap()
        {
            Grant::Wait(wait) => {
                assert!(wait > DOTABUFF_COOLDOWN / 2);
                assert!(wait <= DOTABUFF_COOLDOWN);
            }
            Grant::Granted => panic!("granted during the cooldown"),
        }
        let snapshots = limiter.send(Snapshot).await.unwrap();
        assert_eq!(find(&snapshots, Service::Dotabuff).remaining_minute, 0);
    }
}
