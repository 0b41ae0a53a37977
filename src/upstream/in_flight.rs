//! How many upstream calls each service may have in flight, and how many jobs the fetchers
//! may run for it. One [`Lane`] per service, shared by the [`UpstreamClient`] (a hard cap on
//! calls, `--max-in-flight`; Dotabuff 1) and the fetcher dispatchers (the adaptive job limit).
//!
//! The limit follows the budget and the observed latency (see [`target`]):
//! `clamp(max(granted calls in flight + budget left in this window, ceil(2 x sustained rate/s x
//! EWMA latency)), 1, max)`. While the window has budget, as many calls as it can still grant
//! go at once (bursts); once it is spent, only enough jobs wait to fill the next window at the
//! observed latency, so queued work stays in JetStream where interactive jobs can overtake it.
//! The budget left is pushed in by [`InFlight::refresh`], which start-up wires to the rate
//! limiter; this module depends on nothing above `upstream`.
//!
//! [`UpstreamClient`]: super::client::UpstreamClient

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

use crate::domain::Service;
use crate::metrics as m;

/// How often [`InFlight::refresh`] reads the budget: a window that opens is seen within this.
pub const REFRESH_EVERY: Duration = Duration::from_millis(50);
/// Weight of the newest latency sample in the moving average.
const EWMA_WEIGHT: f64 = 0.2;
/// Calls in flight per call of sustained rate x latency: twice what keeps the pipe full, so
/// a latency spike or a burst of short jobs does not starve the next window.
const HEADROOM: f64 = 2.0;

/// The adaptive limit: `clamp(max(granted + left, ceil(HEADROOM x rate x latency)), 1, max)`.
/// `left` is the budget the current window can still grant (`None`: unknown, as if
/// unlimited); `granted` the calls already granted and not yet answered (they are no longer
/// in `left`); `latency` the moving average, `None` before the first answer.
pub fn target(
    max: usize,
    rate_per_sec: f64,
    latency: Option<Duration>,
    granted: usize,
    left: Option<u32>,
) -> usize {
    let now = left.map_or(max, |left| {
        granted.saturating_add(usize::try_from(left).unwrap_or(usize::MAX))
    });
    let need = latency.map_or(1.0, |l| (HEADROOM * rate_per_sec * l.as_secs_f64()).ceil());
    // `as` saturates for floats; `need` is finite and non-negative.
    let need = need as usize;
    now.max(need).clamp(1, max.max(1))
}

/// Counters of one lane, under its mutex.
#[derive(Debug, Default)]
struct Counts {
    /// The current job limit.
    limit: usize,
    /// Jobs holding a [`JobSlot`].
    jobs: usize,
    /// Calls holding a [`CallPermit`] (waiting for budget or on the wire).
    calls: usize,
    /// Calls granted by the budget and not yet answered.
    granted: usize,
    /// Moving average of call latency.
    latency: Option<Duration>,
    /// Budget left in the current window, as last read.
    left: Option<u32>,
}

/// One service's calls and jobs.
pub struct Lane {
    /// `None` for a lane of jobs that is not a service's (team imports): no gauges.
    service: Option<Service>,
    max: usize,
    rate_per_sec: f64,
    calls: Arc<Semaphore>,
    counts: Mutex<Counts>,
    /// Ticks when the limit changes or a job slot is freed.
    changed: watch::Sender<()>,
}

impl Lane {
    /// A lane of at most `max` jobs that is no service's and reads no budget (team imports,
    /// whose calls go through the service lanes).
    pub fn fixed(max: usize) -> Arc<Self> {
        Arc::new(Self::new(None, max, 1))
    }

    fn new(service: Option<Service>, max: usize, rate_per_min: u32) -> Self {
        let max = max.max(1);
        let lane = Self {
            service,
            max,
            rate_per_sec: f64::from(rate_per_min) / 60.0,
            calls: Arc::new(Semaphore::new(max)),
            counts: Mutex::new(Counts::default()),
            changed: watch::channel(()).0,
        };
        lane.update(|_| false);
        lane
    }

    /// Runs `f` on the counts, recomputes the limit and tells the dispatchers if it moved or a
    /// job slot was freed (`f` returns true).
    fn update(&self, f: impl FnOnce(&mut Counts) -> bool) {
        let mut counts = match self.counts.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let freed = f(&mut counts);
        let limit = target(
            self.max,
            self.rate_per_sec,
            counts.latency,
            counts.granted,
            counts.left,
        );
        let moved = limit != counts.limit;
        counts.limit = limit;
        let calls = counts.calls;
        drop(counts);
        if let Some(service) = self.service.map(Service::as_str) {
            metrics::gauge!(m::UPSTREAM_IN_FLIGHT_LIMIT, "service" => service).set(limit as f64);
            metrics::gauge!(m::UPSTREAM_IN_FLIGHT, "service" => service).set(calls as f64);
        }
        if moved || freed {
            self.changed.send_modify(|_| {});
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Counts) -> T) -> T {
        match self.counts.lock() {
            Ok(c) => f(&c),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// The current job limit.
    pub fn limit(&self) -> usize {
        self.read(|c| c.limit)
    }

    /// Job slots free now (the limit minus the jobs holding one).
    pub fn free(&self) -> usize {
        self.read(|c| c.limit.saturating_sub(c.jobs))
    }

    /// A job slot if one is free.
    pub fn try_job(self: &Arc<Self>) -> Option<JobSlot> {
        let mut taken = false;
        self.update(|c| {
            if c.jobs < c.limit {
                c.jobs += 1;
                taken = true;
            }
            false
        });
        taken.then(|| JobSlot { lane: self.clone() })
    }

    /// Ticks whenever [`Lane::free`] may have grown.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    /// Waits for a call slot (at most `max` calls in flight, whatever the jobs).
    pub async fn call(self: &Arc<Self>) -> CallPermit {
        // The semaphore is never closed; should it be, the call goes unbounded rather than
        // failing (it is still counted).
        let permit = self.calls.clone().acquire_owned().await.ok();
        self.update(|c| {
            c.calls += 1;
            false
        });
        CallPermit {
            lane: self.clone(),
            _permit: permit,
            sent: None,
        }
    }

    fn set_left(&self, left: Option<u32>) {
        self.update(|c| {
            c.left = left;
            false
        });
    }
}

/// A job's place in its lane; freed on drop.
pub struct JobSlot {
    lane: Arc<Lane>,
}

impl Drop for JobSlot {
    fn drop(&mut self) {
        self.lane.update(|c| {
            c.jobs = c.jobs.saturating_sub(1);
            true
        });
    }
}

/// One call's place in its lane; on drop it leaves and, if it was sent, its latency is averaged in.
pub struct CallPermit {
    lane: Arc<Lane>,
    _permit: Option<OwnedSemaphorePermit>,
    /// When the budget granted the call.
    sent: Option<Instant>,
}

impl CallPermit {
    /// The budget granted the call and it goes now.
    pub fn granted(&mut self) {
        if self.sent.is_none() {
            self.sent = Some(Instant::now());
            // Spent from the window as the limiter counted it, so the limit does not wait
            // for the next refresh to see it (a stale `left` would admit jobs twice).
            self.lane.update(|c| {
                c.granted += 1;
                c.left = c.left.map(|left| left.saturating_sub(1));
                false
            });
        }
    }

    /// The answer came; the permit stays held until dropped.
    pub fn answered(&mut self) {
        if let Some(sent) = self.sent.take() {
            let sample = sent.elapsed();
            self.lane.update(|c| {
                c.granted = c.granted.saturating_sub(1);
                c.latency = Some(match c.latency {
                    None => sample,
                    Some(avg) => avg.mul_f64(1.0 - EWMA_WEIGHT) + sample.mul_f64(EWMA_WEIGHT),
                });
                false
            });
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        let granted = self.sent.is_some();
        self.lane.update(|c| {
            c.calls = c.calls.saturating_sub(1);
            if granted {
                c.granted = c.granted.saturating_sub(1);
            }
            false
        });
    }
}

/// Every service's lane. Cheap to clone.
#[derive(Clone)]
pub struct InFlight {
    opendota: Arc<Lane>,
    dotabuff: Arc<Lane>,
}

impl InFlight {
    /// OpenDota up to `max_in_flight` calls at `opendota_per_minute` sustained; Dotabuff one
    /// at a time (its spacing allows no more).
    pub fn new(max_in_flight: usize, opendota_per_minute: u32) -> Self {
        Self {
            opendota: Arc::new(Lane::new(
                Some(Service::OpenDota),
                max_in_flight,
                opendota_per_minute,
            )),
            dotabuff: Arc::new(Lane::new(Some(Service::Dotabuff), 1, 1)),
        }
    }

    pub fn lane(&self, service: Service) -> &Arc<Lane> {
        match service {
            Service::OpenDota => &self.opendota,
            Service::Dotabuff => &self.dotabuff,
        }
    }

    /// Every [`REFRESH_EVERY`] reads the budget left per service from `read` (`None` from
    /// `read`: the budget could not answer; the last values stay) until `shutdown`.
    pub async fn refresh<F, Fut>(self, mut read: F, shutdown: CancellationToken)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<Vec<(Service, u32)>>>,
    {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            for (service, left) in read().await.unwrap_or_default() {
                self.lane(service).set_left(Some(left));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_window_with_budget_allows_what_it_can_still_grant() {
        assert_eq!(target(64, 20.0, Some(MS(600)), 0, Some(1200)), 64);
        assert_eq!(target(64, 20.0, Some(MS(600)), 10, Some(30)), 40);
        assert_eq!(target(6, 1.0, None, 0, Some(100)), 6);
        // Unknown budget: the bound.
        assert_eq!(target(64, 1.0, None, 0, None), 64);
    }

    #[test]
    fn a_spent_window_keeps_enough_waiting_to_fill_the_next_at_the_observed_latency() {
        // 1,200/min = 20/s at 600 ms: 12 keep the pipe full, twice that wait.
        assert_eq!(target(64, 20.0, Some(MS(600)), 0, Some(0)), 24);
        // Calls already granted still count until they are answered.
        assert_eq!(target(64, 20.0, Some(MS(600)), 30, Some(0)), 30);
        // A slow budget needs one.
        assert_eq!(target(64, 4.0 / 60.0, Some(MS(5)), 0, Some(0)), 1);
        assert_eq!(target(64, 4.0 / 60.0, None, 0, Some(0)), 1);
        // Never above the bound.
        assert_eq!(target(8, 100.0, Some(MS(1000)), 0, Some(0)), 8);
    }

    #[tokio::test]
    async fn job_slots_follow_the_limit_and_free_ones_are_announced() {
        let in_flight = InFlight::new(4, 60);
        let lane = in_flight.lane(Service::OpenDota).clone();
        lane.set_left(Some(2));
        let mut changed = lane.subscribe();
        changed.borrow_and_update();
        let a = lane.try_job().expect("one of two");
        let _b = lane.try_job().expect("two of two");
        assert!(lane.try_job().is_none());
        assert_eq!(lane.free(), 0);
        drop(a);
        assert!(changed.has_changed().unwrap());
        assert_eq!(lane.free(), 1);
        // Calls granted are no longer in `left` and keep the limit up.
        let mut call = lane.call().await;
        call.granted();
        lane.set_left(Some(0));
        assert_eq!(lane.limit(), 1);
        call.answered();
        drop(call);
        assert_eq!(lane.limit(), 1);
        assert_eq!(in_flight.lane(Service::Dotabuff).limit(), 1);
    }
}
