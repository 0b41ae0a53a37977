//! One rate budget shared by every instance that calls the upstreams with the same egress
//! identity (OpenDota counts per API key, or per IP without one). [`SharedBudget`] is a
//! [`Budget`] that wraps this process's own (the `RateLimiter`, which keeps local pacing and
//! 429 pauses) and adds JetStream counters ([`counter`]) per service, identity and window: each
//! window the service declares in [`Limits`] (OpenDota: the UTC minute and the UTC day;
//! Dotabuff: the minute). The start-up code builds it with [`SharedBudget::start`] and hands it
//! to the upstream client in place of the local budget.
//!
//! **Acquire.** First the local budget, then +1 on each window's counter, shortest first. A
//! total over the limit is taken back (-1, with the shorter windows' +1) and the caller sleeps
//! until the next window (or until the injected clock moves), then starts over. No caller is
//! ever refused because of another's pending take-back: a total only exceeds the limit when the
//! count before it had reached the limit already. There is no queue across instances, so a caller is not
//! guaranteed a place in the next window, but every window grants its full limit to whoever
//! increments first, and each instance has at most its in-flight bound of callers racing.
//! A refused caller has already spent a local grant; that happens only in a window that is full
//! for everyone, so the local limiter's count errs high only where no call could go anyway.
//!
//! **Corrections.** `observe` raises a counter to what the upstream reports it has seen
//! (`limit - remaining`), never lowers it; a 429 raises the shortest window's counter to the
//! limit, so every instance waits for the next window. Both run as bounded background tasks.
//!
//! **Counters unreachable** (an error, or no answer within [`counter::OP_TIMEOUT`]): we do not
//! fail closed, which would stop every import whenever NATS has a hiccup (a leader election takes
//! 4-8 s). Each instance instead falls back to its fair share of what is left in the window
//! ([`share::LocalShare`]): every counter total it got back and every `Remaining` report of the
//! upstream tells it how many calls the others had made in that window. It grants no more than
//! limit ÷ live instances (rounded down) in the window, its calls on the counters included, and
//! no more than its own calls then plus (limit - everyone's calls then) ÷ live instances. Live instances come from heartbeat keys with a per-key TTL in KV bucket
//! `dota_instances` ([`instances`]), counted every 5 s while NATS answers; the last count is the
//! one used. The grants made on the fallback share are added to the counters with this
//! instance's first increment once they answer again, so the rest of the window counts them.
//! What is left over: counts that were stale when the counters went (calls the others made
//! after this instance last heard), and an instance cut off alone, which adds at most its share
//! on top of what the others count. After a
//! failure the counters are retried after [`RETRY_COUNTERS_AFTER`], so a dead server costs one
//! timeout per interval, not one per call.

pub mod counter;
pub mod instances;
pub mod share;
pub mod usage;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use futures::future::BoxFuture;
use tokio::sync::Semaphore;

use self::counter::{CounterError, Counters, StreamSetupError};
use self::instances::{Instances, InstancesError};
pub use self::share::EgressIdentity;
use self::share::{LocalShare, correction, counter_subject};
pub use self::usage::ClusterUsage;
use super::limits::{Limits, PerService};
use super::window::{Window, seen_by_upstream};
use super::{Budget, BudgetUnavailable, Grant, Remaining, wait};
use crate::clock::Clock;
use crate::config::RateLimits;
use crate::domain::Service;
use crate::metrics::{self, TaskName};
use crate::tasks::Tasks;

/// After a failed counter operation, calls go straight to the fallback share for this long
/// before the counters are tried again.
pub const RETRY_COUNTERS_AFTER: Duration = Duration::from_secs(5);

/// Most corrections (`observe`, `rate_limited`) running at once; one more is dropped with a debug
/// log. Each is two counter operations of ~1 ms, and the client sends at most one per call.
const MAX_CORRECTIONS_IN_FLIGHT: usize = 16;

/// Setting up the shared budget failed at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SharedBudgetError {
    #[error(transparent)]
    Counters(#[from] StreamSetupError),
    #[error(transparent)]
    Instances(#[from] InstancesError),
}

/// What [`SharedBudget::start`] needs besides the JetStream context and the local budget.
#[derive(Debug, Clone)]
pub struct SharedBudgetConfig {
    /// The limits over every instance (the same flags as the local limiter's).
    pub limits: RateLimits,
    /// Who OpenDota counts our calls against ([`EgressIdentity::of_api_key`]). Dotabuff is
    /// always anonymous.
    pub identity: EgressIdentity,
    /// This instance's ID: its heartbeat key (letters, digits, `-`, `_`, `=`).
    pub instance_id: String,
    /// Copies of the counter stream and the instances bucket (`--nats-replicas`).
    pub replicas: usize,
    /// The wall clock the windows follow (`Settings::clock`).
    pub clock: Clock,
}

/// Counts of one service's acquires through this handle since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedBudgetStats {
    /// Calls granted (on the counters or on the fallback share).
    pub granted_total: u64,
    /// Of those, granted on the fallback share while the counters were unreachable.
    pub fallbacks_total: u64,
    /// Times a caller was told to wait for the next window.
    pub waits_total: u64,
}

/// A service's counters in the windows holding "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCounts {
    /// Calls counted in the current UTC minute by every instance.
    pub minute: i64,
    /// Calls counted in the current UTC day; `None` where the service has no day budget.
    pub day: Option<i64>,
}

/// The shared [`Budget`]. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

struct Inner {
    local: Arc<dyn Budget>,
    counters: Counters,
    limits: Limits,
    identity: EgressIdentity,
    clock: Clock,
    live: Arc<AtomicUsize>,
    /// This process's grants per window.
    spent: PerService<Mutex<LocalShare>>,
    stats: PerService<ServiceStats>,
    /// While `Some(t)` and before `t`, the counters are skipped (see [`RETRY_COUNTERS_AFTER`]).
    counters_down_until: Mutex<Option<tokio::time::Instant>>,
    corrections: Arc<Semaphore>,
    runtime: tokio::runtime::Handle,
}

#[derive(Default)]
struct ServiceStats {
    granted: AtomicU64,
    fallbacks: AtomicU64,
    waits: AtomicU64,
}

/// The outcome of one try on the counters.
struct Counted {
    /// The window that was full, if any (the call is not granted).
    refused: Option<Window>,
    /// Each window's counter total after the try, for the windows it reached.
    totals: Vec<(Window, i64)>,
}

/// The outcome of one try at the shared budget.
enum Take {
    Granted { fallback: bool },
    Wait(Window),
}

impl SharedBudget {
    /// Creates (or reuses) the counter stream and the instances bucket with `config.replicas`
    /// copies, beats once, and starts the heartbeat on `tasks`, which runs until their stop and
    /// then deletes this instance's key. Must run inside a tokio runtime, which the background
    /// corrections are spawned on.
    pub async fn start(
        js: jetstream::Context,
        local: Arc<dyn Budget>,
        config: SharedBudgetConfig,
        tasks: &Tasks,
    ) -> Result<Self, SharedBudgetError> {
        let counters = Counters::open(js.clone(), config.replicas).await?;
        let instances = Instances::open(js, config.replicas, config.instance_id).await?;
        let live = instances.live();
        tasks.spawn(TaskName::BudgetHeartbeat, instances.run(tasks.token()));
        Ok(Self {
            inner: Arc::new(Inner {
                local,
                counters,
                limits: Limits::new(&config.limits),
                identity: config.identity,
                clock: config.clock,
                live,
                spent: Default::default(),
                stats: Default::default(),
                counters_down_until: Mutex::new(None),
                corrections: Arc::new(Semaphore::new(MAX_CORRECTIONS_IN_FLIGHT)),
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }

    /// Instances sharing the budget at the last count (at least 1: this one).
    pub fn live_instances(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed).max(1)
    }

    /// This handle's counts for `service` since start.
    pub fn stats(&self, service: Service) -> SharedBudgetStats {
        let stats = self.inner.stats.of(service);
        SharedBudgetStats {
            granted_total: stats.granted.load(Ordering::Relaxed),
            fallbacks_total: stats.fallbacks.load(Ordering::Relaxed),
            waits_total: stats.waits.load(Ordering::Relaxed),
        }
    }

    /// Reads `service`'s counters for the windows holding "now" on the budget's clock.
    pub async fn counts(&self, service: Service) -> Result<WindowCounts, CounterError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let subject = |window| counter_subject(service, inner.identity(service), window, now);
        let minute = inner.counters.read(&subject(Window::Minute)).await?;
        let day = match inner.limits.of(service).limit(Window::Day) {
            Some(_) => Some(inner.counters.read(&subject(Window::Day)).await?),
            None => None,
        };
        Ok(WindowCounts { minute, day })
    }

    /// Loops: local grant, then the shared one; sleeps to the next window when refused.
    async fn acquire_loop(&self, service: Service) -> Result<Duration, BudgetUnavailable> {
        let inner = &self.inner;
        wait::until_granted(&inner.clock, Some(&*inner.local), service, || {
            inner.ask(service)
        })
        .await
    }
}

impl Inner {
    fn identity(&self, service: Service) -> &EgressIdentity {
        static ANONYMOUS: std::sync::LazyLock<EgressIdentity> =
            std::sync::LazyLock::new(EgressIdentity::anonymous);
        match service {
            Service::OpenDota => &self.identity,
            // Steam and STRATZ count per key, and a deployment's instances share one key:
            // one counter per service for all of them.
            Service::Dotabuff | Service::Steam | Service::Stratz => &ANONYMOUS,
        }
    }

    fn spent(&self, service: Service) -> std::sync::MutexGuard<'_, LocalShare> {
        self.spent
            .of(service)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// False while the counters are known to be unreachable.
    fn counters_usable(&self) -> bool {
        let down = self
            .counters_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        down.is_none_or(|until| tokio::time::Instant::now() >= until)
    }

    fn counters_failed(&self, err: &CounterError) {
        let mut down = self
            .counters_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(%err, live_instances = self.live.load(Ordering::Relaxed),
                "rate budget counters unreachable; using this instance's share of the limits");
        }
        *down = Some(tokio::time::Instant::now() + RETRY_COUNTERS_AFTER);
    }

    fn counters_answered(&self) {
        let mut down = self
            .counters_down_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down.take().is_some() {
            tracing::info!("rate budget counters reachable again");
        }
    }

    /// One ask in the wait loop, at "now": a grant, or the wait until the refusing window ends;
    /// either counted in the stats and metrics.
    async fn ask(&self, service: Service) -> Result<Grant, BudgetUnavailable> {
        let now = self.clock.now();
        let stats = self.stats.of(service);
        let service_label = service.as_str();
        match self.take(service, now).await {
            Take::Granted { fallback } => {
                stats.granted.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!(metrics::SHARED_BUDGET_GRANTS, "service" => service_label)
                    .increment(1);
                if fallback {
                    stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                    ::metrics::counter!(metrics::SHARED_BUDGET_FALLBACKS, "service" => service_label)
                        .increment(1);
                }
                Ok(Grant::Granted)
            }
            Take::Wait(window) => {
                stats.waits.fetch_add(1, Ordering::Relaxed);
                ::metrics::counter!(
                    metrics::SHARED_BUDGET_WAITS,
                    "service" => service_label,
                    "window" => window.as_str()
                )
                .increment(1);
                Ok(Grant::Wait(window.wait_for_next(now)))
            }
        }
    }

    /// One try at a grant at `now`: on the counters if they answer, else on the local share.
    async fn take(&self, service: Service, now: SystemTime) -> Take {
        if self.counters_usable() {
            match self.take_counted(service, now).await {
                Ok(counted) => {
                    self.counters_answered();
                    let mut spent = self.spent(service);
                    if counted.refused.is_none() {
                        spent.record(now);
                    }
                    for (window, total) in counted.totals {
                        spent.saw(window, now, total);
                    }
                    return match counted.refused {
                        None => Take::Granted { fallback: false },
                        Some(window) => Take::Wait(window),
                    };
                }
                Err(err) => self.counters_failed(&err),
            }
        }
        let live = self.live.load(Ordering::Relaxed);
        let limits = self.limits.of(service);
        match self.spent(service).try_take(now, limits, live) {
            Ok(()) => Take::Granted { fallback: true },
            Err(window) => Take::Wait(window),
        }
    }

    /// +1 on each window's counter, shortest first, together with the grants this process
    /// made on its fallback share in that window and has not counted there yet; a total over
    /// its limit is taken back (our +1 only), with the +1 of every shorter window. A failed
    /// take-back only over-counts, which errs on the safe side, so it is logged and not
    /// retried.
    async fn take_counted(
        &self,
        service: Service,
        now: SystemTime,
    ) -> Result<Counted, CounterError> {
        let identity = self.identity(service);
        let mut counted = Vec::new();
        let mut totals = Vec::new();
        for limit in &self.limits.of(service).windows {
            let window = limit.window;
            let subject = counter_subject(service, identity, window, now);
            let unrecorded = self.spent(service).take_unrecorded(window, now);
            let total = match self.counters.add(&subject, 1 + i64::from(unrecorded)).await {
                Ok(total) => total,
                Err(err) => {
                    self.spent(service).unrecorded_back(window, now, unrecorded);
                    return Err(err);
                }
            };
            if unrecorded > 0 {
                tracing::info!(
                    subject,
                    unrecorded,
                    "fallback grants added to the shared budget counter"
                );
            }
            counted.push(subject);
            totals.push((window, total));
            if total > i64::from(limit.limit) {
                for subject in counted.iter().rev() {
                    self.take_back(subject).await;
                }
                for (_, total) in &mut totals {
                    *total -= 1;
                }
                return Ok(Counted {
                    refused: Some(window),
                    totals,
                });
            }
        }
        Ok(Counted {
            refused: None,
            totals,
        })
    }

    async fn take_back(&self, subject: &str) {
        if let Err(err) = self.counters.add(subject, -1).await {
            tracing::debug!(%err, subject, "taking back a refused increment failed; over-counted by one");
        }
    }

    /// Raises the `window` counter holding `now` to what the upstream has seen: `limit -
    /// remaining`.
    async fn raise_to(
        &self,
        service: Service,
        window: Window,
        now: SystemTime,
        limit: u32,
        remaining: i64,
    ) {
        let subject = counter_subject(service, self.identity(service), window, now);
        let raised = async {
            let counter = self.counters.read(&subject).await?;
            if let Some(by) = correction(limit, remaining, counter) {
                self.counters.add(&subject, by).await?;
                tracing::debug!(
                    subject,
                    by,
                    "shared budget counter raised to the upstream's count"
                );
            }
            Ok::<_, CounterError>(())
        };
        if let Err(err) = raised.await {
            tracing::debug!(%err, subject, "could not correct the shared budget counter");
        }
    }

    /// Runs `correction` in the background, unless the counters are down or too many run.
    fn spawn_correction<F>(self: &Arc<Self>, correction: impl FnOnce(Arc<Self>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if !self.counters_usable() {
            return;
        }
        let Ok(permit) = self.corrections.clone().try_acquire_owned() else {
            tracing::debug!("too many shared budget corrections in flight; dropping one");
            return;
        };
        let work = correction(self.clone());
        self.runtime.spawn(async move {
            work.await;
            drop(permit);
        });
    }
}

impl Budget for SharedBudget {
    fn acquire(&self, service: Service) -> BoxFuture<'_, Result<Duration, BudgetUnavailable>> {
        Box::pin(self.acquire_loop(service))
    }

    fn observe(&self, service: Service, remaining: Remaining) {
        self.inner.local.observe(service, remaining);
        let now = self.inner.clock.now();
        let reported: Vec<_> = self
            .inner
            .limits
            .of(service)
            .windows
            .iter()
            .filter_map(|l| Some((l.window, l.limit, remaining.of(l.window)?)))
            .collect();
        {
            // What the upstream has seen counts toward the fallback share too.
            let mut spent = self.inner.spent(service);
            for &(window, limit, left) in &reported {
                spent.saw(window, now, seen_by_upstream(limit, left));
            }
        }
        self.inner.spawn_correction(move |inner| async move {
            for (window, limit, left) in reported {
                inner.raise_to(service, window, now, limit, left).await;
            }
        });
    }

    fn rate_limited(&self, service: Service) {
        self.inner.local.rate_limited(service);
        let now = self.inner.clock.now();
        let Some(shortest) = self.inner.limits.of(service).shortest() else {
            return;
        };
        // "None left" raises the shortest window's counter to the limit: every instance waits,
        // and so does this one's fallback share.
        self.inner
            .spent(service)
            .saw(shortest.window, now, i64::from(shortest.limit));
        self.inner.spawn_correction(move |inner| async move {
            inner
                .raise_to(service, shortest.window, now, shortest.limit, 0)
                .await;
        });
    }
}
