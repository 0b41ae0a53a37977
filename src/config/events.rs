//! The settings of the durable event stream (`DOTA_EVENTS`) and of webhook delivery, one
//! group that `Settings` flattens: retention of the stream, whether webhook URLs may point at
//! private addresses, and the retry schedule of a failing delivery (tests shorten it). Read by
//! `events::stream` (retention) and `webhooks` (the rest). Each field declares its flag,
//! `DOTA_*` twin and default once, as every other group does.

use std::time::Duration;

use clap::Args;

use super::values::{positive, secs};

/// The Standard Webhooks retry schedule: the first attempt at once, then after 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h and 10 h (8 attempts over about 27.6 hours).
pub const DEFAULT_WEBHOOK_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// Most attempts a schedule may list (JetStream's `max_deliver` takes them all).
const MAX_SCHEDULE_STEPS: usize = 20;

/// The pause before each attempt of one webhook delivery; `delays[0]` is the first attempt
/// (normally 0: at once), so `len()` is the number of attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Parses `0s,5s,5m,...`: each step a number with a unit `ms`, `s`, `m` or `h`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let steps = text
            .split(',')
            .map(|step| duration(step.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if steps.is_empty() || steps.len() > MAX_SCHEDULE_STEPS {
            return Err(format!(
                "1 to {MAX_SCHEDULE_STEPS} steps, not {}",
                steps.len()
            ));
        }
        Ok(Self(steps))
    }

    /// Attempts in all.
    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    /// The pause before attempt `attempt` (1-based; the first is `delays[0]`), `None` past the
    /// last one.
    pub fn before(&self, attempt: usize) -> Option<Duration> {
        attempt.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }
}

fn duration(step: &str) -> Result<Duration, String> {
    let split = step
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{step:?} lacks a unit (ms, s, m, h)"))?;
    let (number, unit) = step.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{step:?} is not a number with a unit"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit {other:?} in {step:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{step:?}: {e}"))
}

/// Durable events and webhooks.
#[derive(Debug, Clone, Args)]
pub struct EventSettings {
    /// Seconds a ready/failed event is kept in the `DOTA_EVENTS` stream (7 days): how long a
    /// stopped consumer can be away and still catch up.
    #[arg(
        id = "events_retention_secs",
        long = "events-retention-secs",
        env = "DOTA_EVENTS_RETENTION_SECS",
        value_name = "SECS",
        default_value = "604800",
        value_parser = secs,
    )]
    pub retention: Duration,
    /// Bytes the `DOTA_EVENTS` stream may hold; the oldest events go first beyond it.
    #[arg(
        id = "events_max_bytes",
        long = "events-max-bytes",
        env = "DOTA_EVENTS_MAX_BYTES",
        value_name = "BYTES",
        default_value_t = 268_435_456,
        value_parser = positive::<i64>,
    )]
    pub max_bytes: i64,
    /// Allow webhook URLs that resolve to loopback, private or link-local addresses (tests,
    /// private deployments). Off: such URLs are refused at creation and at every delivery.
    #[arg(long = "webhook-allow-private", env = "DOTA_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// Pause before each webhook delivery attempt, comma-separated with units (ms, s, m, h);
    /// the number of steps is the number of attempts.
    #[arg(
        long = "webhook-retry-schedule",
        env = "DOTA_WEBHOOK_RETRY_SCHEDULE",
        value_name = "STEPS",
        default_value = DEFAULT_WEBHOOK_SCHEDULE,
        value_parser = RetrySchedule::parse,
    )]
    pub webhook_retry_schedule: RetrySchedule,
}

impl Default for EventSettings {
    fn default() -> Self {
        super::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_the_standard_one() {
        let s = RetrySchedule::parse(DEFAULT_WEBHOOK_SCHEDULE).unwrap();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.before(1), Some(Duration::ZERO));
        assert_eq!(s.before(2), Some(Duration::from_secs(5)));
        assert_eq!(s.before(3), Some(Duration::from_secs(300)));
        assert_eq!(s.before(8), Some(Duration::from_secs(36_000)));
        assert_eq!(s.before(9), None);
        assert_eq!(s.before(0), None);
    }

    #[test]
    fn schedules_need_units_and_steps() {
        assert_eq!(
            RetrySchedule::parse("0ms, 200ms,1.5s").unwrap().before(3),
            Some(Duration::from_millis(1500))
        );
        for bad in ["", "5", "5d", "x,1s", "-1s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }
}
