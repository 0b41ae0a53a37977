//! What each upstream allows, declared once: a service's budget is a set of calendar
//! [`Window`]s with a limit each, and how calls are paced within them ([`Pacing`]). The local
//! budget and the shared counters both read [`Limits`], so a service is declared in
//! [`Limits::new`] and nowhere else, and the rule that a limit of 0 becomes 1 lives here only.

use crate::config::RateLimits;
use crate::domain::Service;

use super::window::Window;

/// One window of a service's budget and the calls it allows (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub window: Window,
    pub limit: u32,
}

/// How a service's calls are handed out within its windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as work arrives, up to what each window has left (OpenDota counts per calendar
    /// window and reports what is left, so spacing calls out would only waste budget).
    Burst,
    /// Evenly spaced at the minute window's rate, never two at once (Dotabuff publishes no
    /// budget; its bot protection objects to bursts).
    Steady,
}

/// One service's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLimits {
    pub pacing: Pacing,
    /// Shortest window first.
    pub windows: Vec<WindowLimit>,
}

impl ServiceLimits {
    /// Calls granted as they come, within each of `windows`.
    pub fn burst(service: Service, windows: &[(Window, u32)]) -> Self {
        let mut windows: Vec<WindowLimit> = windows
            .iter()
            .map(|&(window, limit)| WindowLimit {
                window,
                limit: at_least_one(service, window, limit),
            })
            .collect();
        windows.sort_by_key(|w| w.window);
        Self {
            pacing: Pacing::Burst,
            windows,
        }
    }

    /// Calls spaced evenly, `per_minute` a minute.
    pub fn steady(service: Service, per_minute: u32) -> Self {
        Self {
            pacing: Pacing::Steady,
            windows: vec![WindowLimit {
                window: Window::Minute,
                limit: at_least_one(service, Window::Minute, per_minute),
            }],
        }
    }

    /// The limit of `window`; `None` where the service has no such window.
    pub fn limit(&self, window: Window) -> Option<u32> {
        self.windows
            .iter()
            .find(|w| w.window == window)
            .map(|w| w.limit)
    }

    /// The shortest window: the one a 429 spends (the upstream refused within it).
    pub fn shortest(&self) -> Option<WindowLimit> {
        self.windows.first().copied()
    }
}

/// A limit of 0 would stall every caller forever, with no next window to wait for. The flags'
/// parsers reject 0; code that builds limits itself gets 1 and a warning.
fn at_least_one(service: Service, window: Window, limit: u32) -> u32 {
    if limit == 0 {
        tracing::warn!(%service, window = window.as_str(), "rate limit of 0 raised to 1");
    }
    limit.max(1)
}

/// One `T` per service: the budget keeps its state per service in these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerService<T> {
    opendota: T,
    dotabuff: T,
}

impl<T> PerService<T> {
    /// `make(service)` for every service.
    pub fn from_fn(mut make: impl FnMut(Service) -> T) -> Self {
        Self {
            opendota: make(Service::OpenDota),
            dotabuff: make(Service::Dotabuff),
        }
    }

    pub fn of(&self, service: Service) -> &T {
        match service {
            Service::OpenDota => &self.opendota,
            Service::Dotabuff => &self.dotabuff,
        }
    }

    pub fn of_mut(&mut self, service: Service) -> &mut T {
        match service {
            Service::OpenDota => &mut self.opendota,
            Service::Dotabuff => &mut self.dotabuff,
        }
    }

    /// Every service's `T`, in [`Service::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        Service::ALL.into_iter().map(|service| self.of(service))
    }
}

/// Every service's budget.
pub type Limits = PerService<ServiceLimits>;

impl Limits {
    /// The budgets `limits` configures: OpenDota per UTC minute and UTC day, Dotabuff spaced
    /// evenly per minute.
    pub fn new(limits: &RateLimits) -> Self {
        Self::from_fn(|service| match service {
            Service::OpenDota => ServiceLimits::burst(
                service,
                &[
                    (Window::Minute, limits.opendota_per_minute),
                    (Window::Day, limits.opendota_per_day),
                ],
            ),
            Service::Dotabuff => ServiceLimits::steady(service, limits.dotabuff_per_minute),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_is_raised_to_one_and_windows_sort_shortest_first() {
        let limits = Limits::new(&RateLimits {
            opendota_per_minute: 0,
            opendota_per_day: 3000,
            dotabuff_per_minute: 0,
        });
        let opendota = limits.of(Service::OpenDota);
        assert_eq!(opendota.limit(Window::Minute), Some(1));
        assert_eq!(opendota.limit(Window::Day), Some(3000));
        assert_eq!(opendota.shortest().map(|w| w.window), Some(Window::Minute));
        let dotabuff = limits.of(Service::Dotabuff);
        assert_eq!(
            (dotabuff.pacing, dotabuff.limit(Window::Minute)),
            (Pacing::Steady, Some(1))
        );
        assert_eq!(dotabuff.limit(Window::Day), None);
        let hourly =
            ServiceLimits::burst(Service::OpenDota, &[(Window::Day, 9), (Window::Hour, 2)]);
        assert_eq!(
            hourly.shortest(),
            Some(WindowLimit {
                window: Window::Hour,
                limit: 2
            })
        );
    }
}
