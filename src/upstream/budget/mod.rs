//! The rate budget: every rule about when an upstream call may go, in one module.
//!
//! - [`window`]: calendar windows of any length (second, minute, hour, UTC day), the one piece
//!   of time arithmetic the rest stands on; [`limits`]: each service's budget declared as a set
//!   of windows with a limit each, and how calls are paced within them.
//! - The local budget, pure and clock-passed: [`fixed`] (per-window counts kept in step with the
//!   upstream's, OpenDota), [`steady`] (even spacing, Dotabuff), and [`local`], which holds one of
//!   those per service and answers grants, reports and [`snapshot`]s. The `RateLimiter` actor
//!   owns a [`LocalBudget`] and serves it as a [`Budget`].
//! - [`shared`]: the decorator that makes one budget of every instance's (JetStream counters).
//! - [`wait`]: the one loop that sleeps until a grant, or wakes when the clock is moved.
//! - [`reserve`]: the gate that lets scheduled work start only while the day's budget is above
//!   the reserve kept for people.
//!
//! [`Budget`] is what the upstream client waits on: wait for a grant before a call, report what
//! the upstream said about its budget after it, and report a 429. It is owned here so the client
//! depends on nothing above it, and a test can drive the client with any implementation without
//! an actix System.

pub mod fixed;
pub mod limits;
pub mod local;
pub mod reserve;
pub mod shared;
pub mod snapshot;
pub mod steady;
pub mod wait;
pub mod window;

pub use self::local::{Grant, LocalBudget};
pub use self::snapshot::{BudgetScope, BudgetSnapshot, DayBudget, WindowBudget, WindowUsage};

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;

use self::window::Window;
use crate::domain::Service;

/// The remaining-budget headers, per window: OpenDota's `x-rate-limit-remaining-{minute,day}`
/// and STRATZ's `x-ratelimit-remaining-{second,minute,hour,day}`.
const REMAINING_PREFIXES: [&str; 2] = ["x-rate-limit-remaining-", "x-ratelimit-remaining-"];
#[cfg(test)]
const REMAINING_MINUTE: &str = "x-rate-limit-remaining-minute";
#[cfg(test)]
const REMAINING_DAY: &str = "x-rate-limit-remaining-day";

/// The budget could not answer (the limiter behind it is gone). Transient for the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("rate budget unavailable")]
pub struct BudgetUnavailable(#[source] pub Arc<dyn std::error::Error + Send + Sync>);

/// What an upstream reported about its budget in one response (OpenDota's
/// `X-Rate-Limit-Remaining-Minute` / `-Day`, STRATZ's `X-RateLimit-Remaining-Second` /
/// `-Minute` / `-Hour` / `-Day`); any may be negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remaining {
    /// Calls left in the upstream's current second window, if reported.
    pub second: Option<i64>,
    /// Calls left in the upstream's current minute window, if reported.
    pub minute: Option<i64>,
    /// Calls left in the upstream's current hour window, if reported.
    pub hour: Option<i64>,
    /// Calls left in the upstream's current day window, if reported.
    pub day: Option<i64>,
}

impl Remaining {
    /// Reads the headers of a response; `None` when it reports neither window.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let header = |window: &str| {
            REMAINING_PREFIXES.iter().find_map(|prefix| {
                headers
                    .get(format!("{prefix}{window}"))
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<i64>().ok())
            })
        };
        let remaining = Self {
            second: header("second"),
            minute: header("minute"),
            hour: header("hour"),
            day: header("day"),
        };
        (remaining != Self::default()).then_some(remaining)
    }

    /// What was reported for `window`; `None` for a window the upstream does not report.
    pub fn of(self, window: Window) -> Option<i64> {
        match window {
            Window::Second => self.second,
            Window::Minute => self.minute,
            Window::Hour => self.hour,
            Window::Day => self.day,
        }
    }
}

/// Per-service call budget shared by every upstream call.
pub trait Budget: Send + Sync {
    /// Resolves when one call to `service` may go (it is then counted); returns how long the
    /// caller waited.
    fn acquire(&self, service: Service) -> BoxFuture<'_, Result<Duration, BudgetUnavailable>>;
    /// The upstream reported its remaining budget in a response (429s included).
    fn observe(&self, service: Service, remaining: Remaining);
    /// The upstream answered 429 Too Many Requests.
    fn rate_limited(&self, service: Service);
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn remaining_reads_both_headers_and_tolerates_negatives() {
        let mut headers = HeaderMap::new();
        assert_eq!(Remaining::from_headers(&headers), None);
        headers.insert(REMAINING_MINUTE, HeaderValue::from_static(" -2 "));
        assert_eq!(
            Remaining::from_headers(&headers),
            Some(Remaining {
                minute: Some(-2),
                ..Remaining::default()
            })
        );
        headers.insert(REMAINING_DAY, HeaderValue::from_static("2990"));
        headers.insert(REMAINING_MINUTE, HeaderValue::from_static("many"));
        assert_eq!(
            Remaining::from_headers(&headers),
            Some(Remaining {
                day: Some(2990),
                ..Remaining::default()
            })
        );
        // STRATZ's spelling, all four windows.
        let mut stratz = HeaderMap::new();
        for (window, left) in [
            ("second", "19"),
            ("minute", "249"),
            ("hour", "1999"),
            ("day", "9990"),
        ] {
            let name =
                reqwest::header::HeaderName::try_from(format!("x-ratelimit-remaining-{window}"));
            stratz.insert(name.unwrap(), HeaderValue::from_static(left));
        }
        assert_eq!(
            Remaining::from_headers(&stratz),
            Some(Remaining {
                second: Some(19),
                minute: Some(249),
                hour: Some(1999),
                day: Some(9990)
            })
        );
    }
}
