//! The `RateLimiter` actor: the one owner of every upstream call budget. The upstream client
//! reaches it through [`LimiterBudget`], its implementation of the client's
//! [`Budget`](crate::upstream::budget::Budget): a grant before each OpenDota or Dotabuff call
//! ([`Acquire`], with the waits slept outside the actor), what the upstream said about its
//! budget afterwards ([`Observe`], [`RateLimited`]). The HTTP status route reads [`Snapshot`].
//! The budget rules themselves live in [`rate_window`](super::rate_window); this file routes
//! messages and keeps counters.
//!
//! A grant is never queued here: a caller that must wait is told how long and asks again, so the
//! actor holds no timers and a slow caller cannot hold up others.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use futures::future::BoxFuture;

use super::rate_window::{FixedWindows, SteadySpacing};
use crate::clock::Clock;
use crate::config::RateLimits;
use crate::domain::Service;
use crate::upstream::budget::{Budget, BudgetUnavailable, Remaining};

/// Ask for one upstream call to `service`. Answered at once with [`Grant`]; nothing is reserved
/// for a caller told to wait.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Grant")]
pub struct Acquire {
    /// The upstream the call goes to.
    pub service: Service,
}

/// The answer to [`Acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Make the call now; it has been counted.
    Granted,
    /// Nothing was counted: sleep this long, then ask again.
    Wait(Duration),
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
/// Dotabuff: no grants for [`DOTABUFF_COOLDOWN`].
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

/// Longest a waiting caller sleeps before it asks again, however long it was told to wait
/// (up to a day when the day budget is spent). The sleep runs on the monotonic clock, which
/// stops while the host is suspended and does not follow a stepped wall clock; asking again
/// every minute keeps a resume at most this late, for one mailbox message per waiting caller
/// a minute.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long Dotabuff gets no calls after it answers 429. Its bot protection escalates when pushed,
/// so back off well beyond the normal spacing rather than probe again in 2 s.
pub const DOTABUFF_COOLDOWN: Duration = Duration::from_secs(120);

/// Bound on queued messages. Each fetch worker has at most one message in flight (it awaits the
/// answer), and workers are far fewer than this; a full mailbox makes `send().await` wait, which
/// is the back-pressure we want.
pub const MAILBOX_CAPACITY: usize = 64;

/// Counters per service, reported by [`Snapshot`].
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    granted_total: u64,
    waits_total: u64,
}

impl Counters {
    fn record(&mut self, grant: Grant) {
        match grant {
            Grant::Granted => self.granted_total += 1,
            Grant::Wait(_) => self.waits_total += 1,
        }
    }
}

/// Grants upstream calls per service, the way each upstream counts them (see
/// [`FixedWindows`] and [`SteadySpacing`]).
pub struct RateLimiter {
    opendota: FixedWindows,
    opendota_counters: Counters,
    dotabuff: SteadySpacing,
    dotabuff_counters: Counters,
    /// Wall clock for OpenDota's calendar windows (`Settings::clock`). Dotabuff spacing uses
    /// `governor`'s monotonic clock, which no wall-clock step can disturb.
    clock: Clock,
}

impl RateLimiter {
    /// A limiter with nothing spent whose OpenDota windows read `clock` (the system clock in
    /// production; tests move it or pin it to chosen instants).
    pub fn new(limits: RateLimits, clock: Clock) -> Self {
        RateLimiter {
            opendota: FixedWindows::new(
                at_least_one("opendota_per_minute", limits.opendota_per_minute).get(),
                at_least_one("opendota_per_day", limits.opendota_per_day).get(),
            ),
            opendota_counters: Counters::default(),
            dotabuff: SteadySpacing::new(at_least_one(
                "dotabuff_per_minute",
                limits.dotabuff_per_minute,
            )),
            dotabuff_counters: Counters::default(),
            clock,
        }
    }

    fn snapshot(&self) -> Vec<BudgetSnapshot> {
        let now = self.clock.now();
        let opendota_remaining = self.opendota.remaining(now);
        let opendota_wait = self.opendota.check(now).err().unwrap_or_default();
        let dotabuff_wait = self.dotabuff.wait();
        vec![
            BudgetSnapshot {
                service: Service::OpenDota,
                limit_per_minute: self.opendota.per_minute(),
                remaining_minute: opendota_remaining.minute,
                limit_per_day: Some(self.opendota.per_day()),
                remaining_day: Some(opendota_remaining.day),
                day: Some(DayBudget {
                    limit: self.opendota.per_day(),
                    remaining: opendota_remaining.day,
                    resets_at: rfc3339_secs(self.opendota.day_resets_at(now)),
                }),
                paused_for_ms: millis(opendota_wait),
                granted_total: self.opendota_counters.granted_total,
                waits_total: self.opendota_counters.waits_total,
            },
            BudgetSnapshot {
                service: Service::Dotabuff,
                limit_per_minute: self.dotabuff.per_minute(),
                remaining_minute: u32::from(dotabuff_wait.is_zero()),
                limit_per_day: None,
                remaining_day: None,
                day: None,
                paused_for_ms: millis(dotabuff_wait),
                granted_total: self.dotabuff_counters.granted_total,
                waits_total: self.dotabuff_counters.waits_total,
            },
        ]
    }
}

fn at_least_one(name: &'static str, limit: u32) -> NonZeroU32 {
    NonZeroU32::new(limit).unwrap_or_else(|| {
        tracing::warn!(limit = name, "rate limit of 0 raised to 1");
        NonZeroU32::MIN
    })
}

/// `at` as RFC 3339 in UTC, whole seconds (`2026-12-01T00:00:00Z`).
fn rfc3339_secs(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
        let (decision, counters) = match msg.service {
            Service::OpenDota => (
                self.opendota.try_acquire(self.clock.now()),
                &mut self.opendota_counters,
            ),
            Service::Dotabuff => (self.dotabuff.try_acquire(), &mut self.dotabuff_counters),
        };
        let grant = match decision {
            Ok(()) => Grant::Granted,
            Err(wait) => Grant::Wait(wait),
        };
        counters.record(grant);
        MessageResult(grant)
    }
}

impl Handler<Observe> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: Observe, _ctx: &mut Self::Context) {
        if msg.service == Service::OpenDota {
            self.opendota
                .observe(self.clock.now(), msg.remaining_minute, msg.remaining_day);
        }
    }
}

impl Handler<RateLimited> for RateLimiter {
    type Result = ();

    fn handle(&mut self, msg: RateLimited, _ctx: &mut Self::Context) {
        match msg.service {
            Service::OpenDota => self.opendota.rate_limited(self.clock.now()),
            Service::Dotabuff => self.dotabuff.pause(DOTABUFF_COOLDOWN),
        }
        tracing::warn!(service = %msg.service, "upstream rate limited us; pausing");
    }
}

impl Handler<Snapshot> for RateLimiter {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _msg: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.snapshot())
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

    /// Loops [`Acquire`] until granted, sleeping the told waits (`tokio::time::sleep`, at
    /// most [`MAX_SLEEP`] at a time), or less when the clock is moved meanwhile. Returns the
    /// total time waited. Fails only if the limiter is gone.
    async fn acquire_loop(&self, service: Service) -> Result<Duration, BudgetUnavailable> {
        let mut waited = Duration::ZERO;
        loop {
            // Subscribed before asking, so a move between the answer and the sleep is seen.
            let mut moves = self.clock.subscribe();
            let grant = self
                .limiter
                .send(Acquire { service })
                .await
                .map_err(|e| BudgetUnavailable(Arc::new(e)))?;
            match grant {
                Grant::Granted => return Ok(waited),
                Grant::Wait(wait) => {
                    let wait = wait.min(MAX_SLEEP);
                    let started = tokio::time::Instant::now();
                    waited += tokio::select! {
                        () = tokio::time::sleep(wait) => wait,
                        () = moves.moved() => started.elapsed(),
                    };
                }
            }
        }
    }
}

impl Budget for LimiterBudget {
    fn acquire(&self, service: Service) -> BoxFuture<'_, Result<Duration, BudgetUnavailable>> {
        Box::pin(self.acquire_loop(service))
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
    use crate::actors::rate_window::WINDOW_MARGIN;

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
