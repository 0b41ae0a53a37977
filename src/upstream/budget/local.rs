//! This process's own budget: per service, [`FixedWindows`] or [`SteadySpacing`] as its
//! [`Pacing`] says, and the counts of grants and waits. Every rule about a grant, an upstream's
//! report, a 429 and the snapshot of it all is here; the `RateLimiter` actor owns a
//! [`LocalBudget`] and a clock and only passes messages and "now" in. A grant is never queued:
//! a caller that must wait is told how long and asks again, so no timer is held here and a slow
//! caller cannot hold up others.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use super::Remaining;
use super::fixed::FixedWindows;
use super::limits::{Limits, Pacing, PerService, ServiceLimits};
use super::snapshot::{BudgetScope, BudgetSnapshot, DayBudget, WindowBudget, millis, rfc3339_secs};
use super::steady::SteadySpacing;
use super::window::Window;
use crate::domain::Service;

/// How long a steadily paced service (Dotabuff) gets no calls after it answers 429. Its bot
/// protection escalates when pushed, so back off well beyond the normal spacing rather than
/// probe again in 2 s.
pub const DOTABUFF_COOLDOWN: Duration = Duration::from_secs(120);

/// The answer to a request for one upstream call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Make the call now; it has been counted.
    Granted,
    /// Nothing was counted: sleep this long, then ask again.
    Wait(Duration),
}

/// Counters per service, reported in the snapshot.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    granted_total: u64,
    waits_total: u64,
}

/// How one service's calls are counted.
enum Pacer {
    Fixed(FixedWindows),
    /// On `governor`'s monotonic clock, which no wall-clock step can disturb.
    Steady(SteadySpacing),
}

struct ServiceBudget {
    service: Service,
    pacer: Pacer,
    counters: Counters,
}

impl ServiceBudget {
    fn new(service: Service, limits: &ServiceLimits) -> Self {
        let pacer = match limits.pacing {
            Pacing::Burst => Pacer::Fixed(FixedWindows::new(&limits.windows)),
            Pacing::Steady => {
                let per_minute = limits.limit(Window::Minute).and_then(NonZeroU32::new);
                Pacer::Steady(SteadySpacing::new(per_minute.unwrap_or(NonZeroU32::MIN)))
            }
        };
        Self {
            service,
            pacer,
            counters: Counters::default(),
        }
    }

    fn acquire(&mut self, now: SystemTime) -> Grant {
        let decision = match &mut self.pacer {
            Pacer::Fixed(windows) => windows.try_acquire(now),
            Pacer::Steady(spacing) => spacing.try_acquire(),
        };
        let grant = match decision {
            Ok(()) => Grant::Granted,
            Err(wait) => Grant::Wait(wait),
        };
        match grant {
            Grant::Granted => self.counters.granted_total += 1,
            Grant::Wait(_) => self.counters.waits_total += 1,
        }
        grant
    }

    fn snapshot(&self, now: SystemTime) -> BudgetSnapshot {
        let Counters {
            granted_total,
            waits_total,
        } = self.counters;
        match &self.pacer {
            Pacer::Fixed(windows) => {
                let wait = windows.check(now).err().unwrap_or_default();
                let remaining_day = windows.left(Window::Day, now);
                BudgetSnapshot {
                    service: self.service,
                    limit_per_minute: windows.limit(Window::Minute).unwrap_or_default(),
                    remaining_minute: windows.left(Window::Minute, now).unwrap_or_default(),
                    limit_per_day: windows.limit(Window::Day),
                    remaining_day,
                    day: windows.limit(Window::Day).map(|limit| DayBudget {
                        limit,
                        remaining: remaining_day.unwrap_or_default(),
                        resets_at: rfc3339_secs(Window::Day.ends_at(now)),
                    }),
                    paused_for_ms: millis(wait),
                    granted_total,
                    waits_total,
                    windows: windows.each(now).iter().map(|u| u.budget(now)).collect(),
                    scope: BudgetScope::Instance,
                }
            }
            Pacer::Steady(spacing) => {
                let wait = spacing.wait();
                BudgetSnapshot {
                    service: self.service,
                    limit_per_minute: spacing.per_minute(),
                    remaining_minute: u32::from(wait.is_zero()),
                    limit_per_day: None,
                    remaining_day: None,
                    day: None,
                    paused_for_ms: millis(wait),
                    granted_total,
                    waits_total,
                    windows: vec![WindowBudget {
                        window: Window::Minute.as_str(),
                        limit: spacing.per_minute(),
                        remaining: u32::from(wait.is_zero()),
                        resets_at: rfc3339_secs(now + wait),
                        used: None,
                    }],
                    scope: BudgetScope::Instance,
                }
            }
        }
    }
}

/// Grants upstream calls per service, the way each upstream counts them.
pub struct LocalBudget {
    services: PerService<ServiceBudget>,
}

impl LocalBudget {
    /// `limits`, nothing spent yet.
    pub fn new(limits: &Limits) -> Self {
        Self {
            services: PerService::from_fn(|service| {
                ServiceBudget::new(service, limits.of(service))
            }),
        }
    }

    /// One call to `service` at `now`: counted and granted, or how long to wait (nothing is
    /// reserved for a caller told to wait).
    pub fn acquire(&mut self, service: Service, now: SystemTime) -> Grant {
        self.services.of_mut(service).acquire(now)
    }

    /// What `service` reported about its budget in a response received at `now` (429s
    /// included). Ignored for a steadily paced service, which reports nothing.
    pub fn observe(&mut self, service: Service, now: SystemTime, reported: Remaining) {
        if let Pacer::Fixed(windows) = &mut self.services.of_mut(service).pacer {
            windows.observe(now, reported);
        }
    }

    /// `service` answered 429 Too Many Requests at `now`. Counted windows: the shortest counts
    /// as spent (grants resume in the next one, or later if a longer one is spent too). Steady
    /// pacing: no grants for [`DOTABUFF_COOLDOWN`].
    pub fn rate_limited(&mut self, service: Service, now: SystemTime) {
        match &mut self.services.of_mut(service).pacer {
            Pacer::Fixed(windows) => windows.rate_limited(now),
            Pacer::Steady(spacing) => spacing.pause(DOTABUFF_COOLDOWN),
        }
        tracing::warn!(%service, "upstream rate limited us; pausing");
    }

    /// Every service's budget at `now`, in [`Service::ALL`] order.
    pub fn snapshot(&self, now: SystemTime) -> Vec<BudgetSnapshot> {
        self.services.iter().map(|s| s.snapshot(now)).collect()
    }
}
